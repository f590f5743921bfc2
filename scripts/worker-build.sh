#!/usr/bin/env bash
# Builds the Worker (crates/worker → crates/worker/build/index.js + index_bg.wasm) with
# worker-build, using only tools installed by scripts/setup.sh: the pinned wasm-bindgen CLI,
# npm binaryen's wasm-opt and npm esbuild. Nothing is downloaded (worker-build would fetch
# all three from GitHub otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v worker-build >/dev/null 2>&1 || { echo "worker-build is missing: run scripts/setup.sh" >&2; exit 1; }
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/@esbuild/linux-x64/bin/esbuild}"
[ -x "$ESBUILD_BIN" ] || ESBUILD_BIN="$root/node_modules/.bin/esbuild"
# worker-build's download cache, kept in the project (and unused: every tool is given above).
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$root/.tools/cache}"
for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$bin" ] || { echo "missing $bin: run scripts/setup.sh" >&2; exit 1; }
done

cd crates/worker
worker-build --release
