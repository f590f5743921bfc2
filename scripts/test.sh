#!/usr/bin/env bash
# Runs every test of monodit-bridge, installing what is missing first.
#
#   1. lint: cargo fmt --check, clippy (native workspace and the wasm crate) with -D warnings
#   2. native: cargo test --workspace (core rules, server over real HTTP, the conformance suite
#      against the native server)
#      then schemathesis: server/openapi.yaml checked against a real server (bounded run)
#      then the conformance suite against the Cloudflare Worker under Miniflare (the tests
#      server/tests/conformance/worker.list names; any other is counted as not yet served)
#   3. browser: wasm-pack test --headless --chrome against a real monodit-server, then against
#      the Worker under Miniflare (scripts/with-worker.sh)
#   4. e2e: Playwright specs in e2e/ against the demo in headless Chromium (when present)
#   5. typings: tsc --strict over tests/types (a widget and a host using the published .d.ts)
#
# Set MONODIT_SKIP_LINT=1 to skip step 1 while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n==== %s ====\n' "$*"; }
started=$(date +%s)
# Each backend's outputs, kept for the pass counts printed at the end.
logs=$(mktemp -d "${TMPDIR:-/tmp}/monodit-test-logs.XXXXXX")
trap 'rm -rf "$logs"' EXIT
# The sum of "test result: ok. N passed" lines of a log.
passed_in() { sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}'; }

if [ "${MONODIT_SKIP_LINT:-0}" != 1 ]; then
  step "lint"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  cargo clippy --target wasm32-unknown-unknown -p monodit-bridge --all-targets --quiet -- -D warnings
  cargo check -p monodit-service --target wasm32-unknown-unknown --quiet
  cargo clippy --target wasm32-unknown-unknown -p monodit-worker --all-targets --quiet -- -D warnings
fi

step "native tests (cargo test --workspace)"
cargo test --workspace 2>&1 | tee "$logs/native"
# The conformance binary's own result line (the suite against the native server).
native_conformance=$(awk '/Running tests\/conformance\/main.rs/ {f = 1} f && /^test result:/ {print; exit}' "$logs/native" | sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p')

step "OpenAPI conformance (schemathesis against a real server, scripts/schemathesis.sh)"
bash scripts/schemathesis.sh

step "conformance against the Cloudflare Worker (Miniflare, local D1 + R2, scripts/worker.sh)"
MONODIT_SKIP_SETUP=1 bash scripts/worker.sh bash scripts/worker-conformance.sh 2>&1 | tee "$logs/worker"
worker_conformance=$(sed -n 's/^worker conformance: \(.*\)$/\1/p' "$logs/worker")

step "browser tests (wasm-pack test --headless --chrome, real server)"
bash scripts/with-server.sh wasm-pack test --headless --chrome --mode no-install 2>&1 | tee "$logs/browser-native"

step "browser tests against the Cloudflare Worker (Miniflare, scripts/with-worker.sh)"
MONODIT_WORKER_SKIP_BUILD=1 bash scripts/with-worker.sh wasm-pack test --headless --chrome --mode no-install 2>&1 | tee "$logs/browser-worker"

if compgen -G "e2e/*.spec.*" >/dev/null; then
  step "end-to-end tests (Playwright, headless Chromium)"
  bash scripts/e2e.sh
fi

step "typings (tsc --strict on a widget and a host written from the docs, tests/types)"
# e2e.sh has just built pkg/ from these sources; build it here when e2e was skipped.
[ -f pkg/widget/monodit_bridge.d.ts ] && [ -f pkg/host/monodit_bridge.d.ts ] || bash scripts/build.sh
tsc -p tests/types

printf '\nbackends:\n'
printf '  native: conformance %s passed, browser %s passed\n' "${native_conformance:-?}" "$(passed_in "$logs/browser-native")"
printf '  worker: conformance %s, browser %s passed\n' "${worker_conformance:-?}" "$(passed_in "$logs/browser-worker")"
printf '\nall tests passed in %ss\n' "$(( $(date +%s) - started ))"
