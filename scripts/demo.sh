#!/usr/bin/env bash
# Starts the monodit-bridge demo: builds the wasm packages, starts the backend in --dev mode on
# 127.0.0.1, and prints the dashboard URL. Ctrl-C stops the server.
#   MONODIT_PORT   port to listen on (default 8787)
#   MONODIT_DATA   where the SQLite file and objects live (default ./data)
#   MONODIT_DEMO_NO_BUILD=1   skip setup and the wasm build (reuse pkg/)
#
#   bash scripts/demo.sh            # the native server (axum + SQLite + files) serves all
#   bash scripts/demo.sh --worker   # the API from the Cloudflare Worker under Miniflare
#                                   # (local D1 and R2, in memory: gone when it stops); the
#                                   # dashboard is served on MONODIT_PORT and pointed at it
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${MONODIT_DEMO_NO_BUILD:-0}" != 1 ]; then # 1: reuse pkg/ as built
  bash scripts/setup.sh
  bash scripts/build.sh
fi
port="${MONODIT_PORT:-8787}"

if [ "${1:-}" = --worker ]; then
  # The page's origin must be trusted by the Worker's CORS, as the native --allow-origin.
  export MONODIT_SKIP_SETUP=1 MONODIT_DEMO_PORT="$port"
  MONODIT_WORKER_ALLOW_ORIGIN="http://127.0.0.1:$port http://localhost:$port" \
    exec bash scripts/worker.sh bash -c '
      set -euo pipefail
      python3 scripts/lib/static-www.py "$MONODIT_DEMO_PORT" &
      static_pid=$!
      trap "kill -TERM $static_pid 2>/dev/null; wait 2>/dev/null || true" EXIT INT TERM
      for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$MONODIT_DEMO_PORT/" >/dev/null 2>&1 && break
        kill -0 "$static_pid" 2>/dev/null || { echo "the static server did not start (port $MONODIT_DEMO_PORT in use?)" >&2; exit 1; }
        sleep 0.1
      done
      echo
      echo "  monodit-bridge demo on the Worker: open http://127.0.0.1:$MONODIT_DEMO_PORT/?backend=$MONODIT_CONFORMANCE_URL   (Ctrl-C to stop)"
      echo
      wait "$static_pid"'
fi

cargo build --quiet -p monodit-server
data="${MONODIT_DATA:-$PWD/data}"
mkdir -p "$data"
server_pid=""
trap '[ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null; wait 2>/dev/null || true' EXIT INT TERM
"${CARGO_TARGET_DIR:-target}/debug/monodit-server" serve --dev --bind 127.0.0.1 --port "$port" \
  --db "$data/monodit.sqlite" --objects "$data/objects" --static www &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "monodit-server exited during start-up" >&2; exit 1; }
  sleep 0.1
done
echo
echo "  monodit-bridge demo: open http://127.0.0.1:$port/   (Ctrl-C to stop)"
echo
wait "$server_pid"
