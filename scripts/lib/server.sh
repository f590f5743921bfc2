# Shared by scripts/with-server.sh, scripts/e2e.sh and scripts/bench.sh (source it; bash only):
# start monodit-server on a free port of 127.0.0.1, wait until it answers, stop it by PID.
#
#   server_start BIN WORKDIR [serve args...]   sets server_pid and server_url, or exits 1
#   server_stop                                TERM, then KILL after 5 s (safe to call twice)
#   server_log_tail N                          the last N lines of the server log, to stderr
#
# The database and objects live in WORKDIR; the caller owns WORKDIR and its trap.

server_pid=""
server_url=""
server_log=""

server_start() {
  local bin=$1 work=$2
  shift 2
  server_log="$work/server.log"
  # Port 0: the server picks a free port and writes its URL to the ready file (no race).
  "$bin" serve --dev --bind 127.0.0.1 --port 0 \
    --db "$work/monodit.sqlite" --objects "$work/objects" \
    --ready-file "$work/ready" "$@" >"$server_log" 2>&1 &
  server_pid=$!
  # Bounded wait (30 s) for the ready file and a /v1/health answer.
  local _
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || { echo "monodit-server exited during start-up" >&2; exit 1; }
    if [ -s "$work/ready" ]; then
      server_url=$(head -n1 "$work/ready")
      curl -fsS "$server_url/v1/health" >/dev/null 2>&1 && return 0
    fi
    sleep 0.1
  done
  echo "monodit-server did not answer on ${server_url:-?} within 30 s" >&2
  exit 1
}

server_stop() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local _
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

server_log_tail() {
  if [ -n "$server_log" ] && [ -s "$server_log" ]; then
    echo "--- last lines of the server log ($server_log) ---" >&2
    tail -n "$1" "$server_log" >&2
  fi
}
