#!/usr/bin/env bash
# Runs a command against the Worker under Miniflare (scripts/worker.sh: local D1 and R2,
# dev routes on), as scripts/with-server.sh does against the native server:
#
#   scripts/with-worker.sh wasm-pack test --headless --chrome --mode no-install
#
# The command sees MONODIT_TEST_SERVER (the Worker's URL, compiled into browser tests) and
# WASM_BINDGEN_TEST_ADDRESS (where wasm-bindgen-test serves its page, an origin the Worker's
# CORS trusts). The Worker is stopped by its PID when the command ends.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || { echo "usage: scripts/with-worker.sh COMMAND [ARGS...]" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

test_port="${MONODIT_TEST_PAGE_PORT:-$(free_port)}"
export WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$test_port"
export MONODIT_WORKER_ALLOW_ORIGIN="http://127.0.0.1:$test_port http://localhost:$test_port"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"
export MONODIT_SKIP_SETUP=1

# shellcheck disable=SC2016 # expanded by the inner shell, where worker.sh has set the URL
exec bash scripts/worker.sh bash -c 'export MONODIT_TEST_SERVER="$MONODIT_CONFORMANCE_URL"; echo "[with-worker] Worker at $MONODIT_TEST_SERVER; test page at http://$WASM_BINDGEN_TEST_ADDRESS"; exec "$@"' with-worker "$@"
