#!/usr/bin/env bash
# Runs the Playwright end-to-end specs (e2e/) against the real stack:
#   1. builds pkg/widget and pkg/host (scripts/build.sh) when missing or older than the sources,
#   2. starts monodit-server on 127.0.0.1 (free port, temporary --db and --objects, --dev,
#      --static www) and waits until /v1/health answers (bounded),
#   3. runs `npx playwright test` with MONODIT_E2E_URL set (extra arguments are passed on),
#   4. stops the server by its PID, also on failure or Ctrl-C.
# Screenshots of the dashboard land in e2e/screenshots/.
#   MONODIT_E2E_STATIC  serve another static root instead of www/ (e.g. a copy whose pkg/ is
#                       another build); the package build step is then skipped.
#   MONODIT_E2E_NO_BUILD=1  use pkg/ as it is, even if the sources are newer.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

stale() {
  local out=$1
  [ -f "$out" ] || return 0
  [ -n "$(find src crates/core/src Cargo.toml crates/core/Cargo.toml -newer "$out" -print -quit 2>/dev/null)" ]
}
static_dir="${MONODIT_E2E_STATIC:-www}"
if [ "$static_dir" = www ] && [ "${MONODIT_E2E_NO_BUILD:-0}" != 1 ] && { stale pkg/widget/monodit_bridge_bg.wasm || stale pkg/host/monodit_bridge_bg.wasm; }; then
  echo "[e2e] building the wasm packages (scripts/build.sh)"
  bash scripts/build.sh
fi
[ -e www/pkg ] || ln -sfn ../pkg www/pkg

cargo build --quiet -p monodit-server
bin="${CARGO_TARGET_DIR:-target}/debug/monodit-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/monodit-e2e.XXXXXX")
source scripts/lib/server.sh
cleanup() {
  local rc=$?
  server_stop
  if [ $rc -ne 0 ]; then
    server_log_tail 40
    # What the page looked like when a spec failed (Playwright's aria snapshot), so a CI log
    # alone explains the failure; bounded per file.
    for ctx_file in test-results/*/error-context.md; do
      [ -f "$ctx_file" ] || continue
      echo "--- $ctx_file ---"
      head -c 6000 "$ctx_file"
      echo
    done
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT INT TERM

server_start "$bin" "$work" --static "$static_dir"
url="$server_url"
echo "[e2e] monodit-server (pid $server_pid) at $url"

mkdir -p e2e/screenshots
export MONODIT_E2E_URL="$url"
set +e
npx --no-install playwright test "$@"
status=$?
set -e
exit $status
