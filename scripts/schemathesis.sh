#!/usr/bin/env bash
# Checks that server/openapi.yaml and the server agree: schemathesis (pinned, installed by
# scripts/setup.sh into .tools/schemathesis-venv) runs every check, including the stateful
# phase that follows the spec's `links`, against a freshly started --dev server with a fresh
# user, and fails on any finding.
#
#   scripts/schemathesis.sh            bounded: SCHEMATHESIS_MAX_EXAMPLES (default 30) per
#                                      operation, SCHEMATHESIS_MAX_TIME seconds (default 150)
#   SCHEMATHESIS_SEED=N                another fixed seed (default 1: runs are reproducible)
#
# The server is stopped by its PID when the run ends, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

st=.tools/schemathesis-venv/bin/schemathesis
[ -x "$st" ] || { echo "schemathesis is missing: run scripts/setup.sh" >&2; exit 1; }

cargo build --quiet -p monodit-server
bin="${CARGO_TARGET_DIR:-target}/debug/monodit-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/monodit-schemathesis.XXXXXX")
source scripts/lib/server.sh
cleanup() {
  local rc=$?
  server_stop
  if [ $rc -ne 0 ]; then server_log_tail 30; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

# A random demo token too, so nothing of a previous run is reachable.
server_start "$bin" "$work" --demo-token "demo-$RANDOM$RANDOM$RANDOM" --static "$work/no-static"
token=$(curl -fsS -X POST -H 'content-type: application/json' -d '{"plan":"pro","addons":1}' \
  "$server_url/v1/dev/users" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "could not create a dev user" >&2; exit 1; }
echo "[schemathesis] monodit-server (pid $server_pid) at $server_url, fresh user"

# /v1/dev/faults makes the caller's next document writes fail with 500 on purpose, and
# /v1/dev/plan would move the run's user to the Free plan or a tiny limit for the rest of it.
"$st" --config-file scripts/schemathesis.toml run "$server_url/v1/openapi.json" --url "$server_url" \
  --header "Authorization: Bearer $token" \
  --phases examples,coverage,fuzzing,stateful \
  --exclude-path /v1/dev/faults --exclude-path /v1/dev/plan \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --request-timeout 10 \
  --workers 1 \
  --generation-database none \
  --no-color \
  "$@"
