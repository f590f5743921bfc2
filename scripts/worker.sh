#!/usr/bin/env bash
# Runs the monodit Worker locally under Miniflare/workerd (local D1 and R2 in memory, the
# shared migrations applied, dev routes on, random secrets, 127.0.0.1 on a free port), then
# runs the given command with MONODIT_CONFORMANCE_URL set to it, and stops the Worker by its
# PID when the command ends (also on failure or Ctrl-C). Without a command it keeps the
# Worker running until Ctrl-C. CORS trusts http://app.test (the origin the conformance suite
# sends, as a native test server trusts it) and each origin in MONODIT_WORKER_ALLOW_ORIGIN
# (space-separated), as the native `--allow-origin`; MONODIT_WORKER_UPLOAD_TTL_SECS sets the
# native `--upload-ttl-secs`; MONODIT_WORKER_PORT a fixed port instead of a free one.
#
#   bash scripts/worker.sh                          # build, start, print the URL, wait
#   bash scripts/worker.sh bash scripts/worker-conformance.sh
#   MONODIT_WORKER_SKIP_BUILD=1 bash scripts/worker.sh CMD   # reuse crates/worker/build
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${MONODIT_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false CI=true

if [ "${MONODIT_WORKER_SKIP_BUILD:-0}" != 1 ] || [ ! -f crates/worker/build/index.js ]; then
  bash scripts/worker-build.sh
fi

log=$(mktemp -d "${TMPDIR:-/tmp}/monodit-worker.XXXXXX")
run_args=(--allow-origin http://app.test)
for o in ${MONODIT_WORKER_ALLOW_ORIGIN:-}; do run_args+=(--allow-origin "$o"); done
[ -z "${MONODIT_WORKER_UPLOAD_TTL_SECS:-}" ] || run_args+=(--upload-ttl-secs "$MONODIT_WORKER_UPLOAD_TTL_SECS")
[ -z "${MONODIT_WORKER_PORT:-}" ] || run_args+=(--port "$MONODIT_WORKER_PORT")
node scripts/worker-run.mjs "${run_args[@]}" >"$log/out" 2>"$log/err" &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^READY //p' "$log/out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "the Worker did not start:" >&2; cat "$log/err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "the Worker did not answer /v1/health within 60 s:" >&2; cat "$log/err" >&2; exit 1; }
curl -fsS "$url/v1/health" >/dev/null
echo "[worker] running at $url (pid $pid)"

export MONODIT_CONFORMANCE_URL="$url"
if [ $# -gt 0 ]; then
  "$@"
else
  echo "[worker] Ctrl-C stops it"
  wait "$pid"
fi
