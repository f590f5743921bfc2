#!/usr/bin/env bash
# Runs the conformance tests a backend passes today against the server at
# MONODIT_CONFORMANCE_URL (scripts/worker.sh sets it), and reports every other conformance
# test as "not yet on <backend>", by name and count. The backend is
# MONODIT_CONFORMANCE_BACKEND (default `worker`); its list is
# server/tests/conformance/<backend>.list. Fails when a listed test fails or the list names a
# test that does not exist. (The native server passes the whole suite: plain `cargo test`.)
#
#   bash scripts/worker.sh bash scripts/worker-conformance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONODIT_CONFORMANCE_URL:?run this through scripts/worker.sh (it sets MONODIT_CONFORMANCE_URL)}"
backend="${MONODIT_CONFORMANCE_BACKEND:-worker}"
[[ "$backend" =~ ^[a-z0-9-]+$ ]] || { echo "MONODIT_CONFORMANCE_BACKEND must be a plain name such as worker" >&2; exit 1; }
list="server/tests/conformance/$backend.list"
[ -f "$list" ] || { echo "no list of conformance tests for backend '$backend' ($list)" >&2; exit 1; }
all=$(cargo test -q -p monodit-server --test conformance -- --list --format terse 2>/dev/null | sed -n 's/: test$//p' | sort)
subset=$(grep -v '^\s*#' "$list" | sed 's/\s*$//' | grep . | sort -u)
[ -n "$all" ] || { echo "could not list the conformance tests" >&2; exit 1; }

stale=$(comm -13 <(echo "$all") <(echo "$subset"))
[ -z "$stale" ] || { printf '%s names tests that do not exist:\n%s\n' "$list" "$stale" >&2; exit 1; }
missing=$(comm -23 <(echo "$all") <(echo "$subset"))

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086 # one filter argument per listed test
cargo test -p monodit-server --test conformance -- --exact $subset 2>&1 | tee "$out"
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$out" | tail -n1)
want=$(echo "$subset" | wc -l)
[ "${passed:-0}" = "$want" ] || { echo "$backend conformance: ${passed:-0} of $want listed tests passed" >&2; exit 1; }

n_missing=$(echo -n "$missing" | grep -c . || true)
if [ "$n_missing" -gt 0 ]; then
  printf '\nnot yet on %s (%s):\n' "$backend" "$n_missing"
  echo "$missing" | sed 's/^/  /'
fi
printf '\n%s conformance: %s passed, %s not yet implemented\n' "$backend" "$passed" "$n_missing"
