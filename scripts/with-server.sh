#!/usr/bin/env bash
# Runs a command against a real, freshly started monodit-server, then stops the server.
#
#   scripts/with-server.sh wasm-pack test --headless --chrome --mode no-install
#
# The server gets a temporary SQLite file and object directory, listens on a free port of
# 127.0.0.1 in --dev mode, and trusts the browser-test page's origin for CORS. The command sees:
#   MONODIT_TEST_SERVER         the server's base URL (compiled into browser tests)
#   WASM_BINDGEN_TEST_ADDRESS   where wasm-bindgen-test serves its page (127.0.0.1:<port>)
#   MONODIT_DEV_TOKEN           the demo user's token
# The server is stopped by its PID when the command ends, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || { echo "usage: scripts/with-server.sh COMMAND [ARGS...]" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

cargo build --quiet -p monodit-server
bin="${CARGO_TARGET_DIR:-target}/debug/monodit-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/monodit-test.XXXXXX")
source scripts/lib/server.sh
cleanup() {
  local rc=$?
  server_stop
  if [ $rc -ne 0 ]; then server_log_tail 30; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

test_port="${MONODIT_TEST_PAGE_PORT:-$(free_port)}"
export WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$test_port"

server_start "$bin" "$work" \
  --allow-origin "http://127.0.0.1:$test_port" --allow-origin "http://localhost:$test_port"
url="$server_url"

export MONODIT_TEST_SERVER="$url"
MONODIT_DEV_TOKEN=$(sed -n 's/.*dev token: *\([^ ]*\).*/\1/p' "$work/server.log" | head -n1)
export MONODIT_DEV_TOKEN
# wasm-bindgen-test-runner gives a whole test binary 20 s in the browser by default; the larger
# browser files take about that long on 2 idle cores, so a loaded CI machine would time out
# without any code change. Each test still bounds its own waits.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
echo "[with-server] monodit-server (pid $server_pid) at $url; test page at http://$WASM_BINDGEN_TEST_ADDRESS"

set +e
"$@"
status=$?
set -e
exit $status
