#!/usr/bin/env bash
# Starts the monodit-bridge demo: builds the wasm packages, starts the backend in --dev mode on
# 127.0.0.1, and prints the dashboard URL. Ctrl-C stops the server.
#   MONODIT_PORT   port to listen on (default 8787)
#   MONODIT_DATA   where the SQLite file and objects live (default ./data)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cargo build --quiet -p monodit-server
port="${MONODIT_PORT:-8787}"
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
