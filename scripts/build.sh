#!/usr/bin/env bash
# Builds the npm package: two wasm builds of one crate, optimised with npm binaryen's wasm-opt.
#   pkg/widget  what a widget iframe downloads (connect() and the ctx facades)
#   pkg/host    what the host page loads (Host, mirror, sync)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
command -v wasm-opt >/dev/null || { echo "wasm-opt is missing: run scripts/setup.sh first." >&2; exit 1; }
for side in widget host; do
  wasm-pack build --release --target web --mode no-install --no-pack \
    --out-dir "pkg/$side" --out-name monodit_bridge -- --no-default-features --features "$side"
done
# The demo server serves www/; widgets and the dashboard import /pkg/{widget,host}/.
ln -sfn ../pkg www/pkg
for f in pkg/widget/monodit_bridge_bg.wasm pkg/host/monodit_bridge_bg.wasm; do
  printf '%-36s %8d bytes, %7d gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
