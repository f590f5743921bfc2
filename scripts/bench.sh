#!/usr/bin/env bash
# The benchmark (not part of scripts/test.sh): monodit-bridge against real peer libraries
# (Comlink, Penpal, idb-keyval, Dexie) in one run, in headless Debian Chromium, against the real
# backend. Prints a table and writes bench/results.json and bench/RESULTS.md.
#
#   bash scripts/bench.sh              every figure (about 5 minutes on 2 cores)
#   bash scripts/bench.sh rpc sizes    a subset (then results files are left alone)
#
#   1. builds pkg/widget and pkg/host (scripts/build.sh) when missing or older than the sources,
#      and the release monodit-server,
#   2. serves bench/pages, pkg/ and the peers' published bundles from a temporary --static dir,
#   3. starts monodit-server on 127.0.0.1 (free port, temporary --db and --objects, --dev) and
#      waits until /v1/health answers (bounded),
#   4. runs node bench/run.mjs (bounded per figure), then stops the server by its PID, also on
#      failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/node_modules/.bin:$PATH"

for p in comlink penpal idb-keyval dexie @playwright/test; do
  [ -d "node_modules/$p" ] || { echo "node_modules/$p is missing: run npm ci (or scripts/setup.sh) first." >&2; exit 1; }
done

stale() {
  local out=$1
  [ -f "$out" ] || return 0
  [ -n "$(find src crates/core/src Cargo.toml crates/core/Cargo.toml -newer "$out" -print -quit 2>/dev/null)" ]
}
# MONODIT_BENCH_NO_BUILD=1 measures pkg/ as it is (still required to exist).
if [ "${MONODIT_BENCH_NO_BUILD:-}" = 1 ]; then
  [ -f pkg/widget/monodit_bridge_bg.wasm ] && [ -f pkg/host/monodit_bridge_bg.wasm ] \
    || { echo "pkg/ is not built: run scripts/build.sh" >&2; exit 1; }
elif stale pkg/widget/monodit_bridge_bg.wasm || stale pkg/host/monodit_bridge_bg.wasm; then
  echo "[bench] building the wasm packages (scripts/build.sh)"
  bash scripts/build.sh
fi

# MONODIT_BENCH_SERVER_BIN=path skips the build (e.g. a debug binary while iterating on the pages).
if [ -n "${MONODIT_BENCH_SERVER_BIN:-}" ]; then
  bin=$MONODIT_BENCH_SERVER_BIN
  export MONODIT_BENCH_SERVER_BUILD="$bin"
else
  # The workspace's release profile is tuned for wasm size (opt-level "z", LTO); the server is
  # measured at opt-level 3, as bench/server-bench.sh does (only this command sees these).
  echo "[bench] building monodit-server (release, opt-level 3)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_PANIC=unwind \
    cargo build --quiet --release -p monodit-server
  bin="${CARGO_TARGET_DIR:-target}/release/monodit-server"
  export MONODIT_BENCH_SERVER_BUILD="release, opt-level 3"
fi

# The raw-SQLite peer of the server figures (its own small crate; see bench/rawsql).
echo "[bench] building the raw SQLite peer (bench/rawsql, release)"
# Its own workspace: point it at the main target dir, where bench/measures/server.mjs looks.
cargo build --quiet --release --manifest-path bench/rawsql/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-$root/target}" \
  || echo "[bench] the raw SQLite peer did not build: figure 7 runs without it" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/monodit-bench.XXXXXX")
source "$root/scripts/lib/server.sh"
cleanup() {
  local rc=$?
  server_stop
  [ $rc -eq 0 ] || server_log_tail 30
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

# The static root: the bench pages, the two builds, and each peer's published bundle.
static="$work/static"
mkdir -p "$static/vendor"
ln -s "$root/bench/pages" "$static/bench"
ln -s "$root/pkg" "$static/pkg"
ln -s "$root/node_modules/comlink/dist/esm/comlink.min.mjs" "$static/vendor/comlink.mjs"
ln -s "$root/node_modules/idb-keyval/dist/index.js" "$static/vendor/idb-keyval.js"
ln -s "$root/node_modules/dexie/dist/modern/dexie.min.mjs" "$static/vendor/dexie.mjs"

server_start "$bin" "$work" --static "$static"
url="$server_url"
echo "[bench] monodit-server (pid $server_pid) at $url"

export MONODIT_BENCH_URL="$url"
export MONODIT_BENCH_SERVER_PID="$server_pid"
export MONODIT_BENCH_DB="$work/monodit.sqlite"
# Hard bound on the whole run (each figure is bounded too).
# Figure 8 measures the Cloudflare Worker under Miniflare next to the server: scripts/worker.sh
# starts it (local D1/R2, free port, stopped by PID) around the driver. MONODIT_BENCH_WORKER=0
# skips it.
runner=()
# The upload figure's 1 GiB run also goes to it, from the bench page served here (its origin
# is trusted by the Worker's CORS).
if [ "${MONODIT_BENCH_WORKER:-1}" = 1 ] && { [ $# -eq 0 ] || [[ " $* " == *" worker "* ]] || [[ " $* " == *" upload "* ]]; }; then
  runner=(env MONODIT_SKIP_SETUP=1 MONODIT_WORKER_ALLOW_ORIGIN="$url" bash "$root/scripts/worker.sh")
fi
timeout --signal=TERM 690 "${runner[@]}" node bench/run.mjs "$@"
