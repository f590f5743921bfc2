#!/usr/bin/env bash
# Builds the npm package: two wasm builds of one crate, optimised with npm binaryen's wasm-opt.
#   pkg/widget  what a widget iframe downloads (connect() and the ctx facades)
#   pkg/host    what the host page loads (Host, mirror, sync)
# then shrinks both (scripts/shrink-pkg.mjs: short import names, minified JS glue).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
command -v wasm-opt >/dev/null || { echo "wasm-opt is missing: run scripts/setup.sh first." >&2; exit 1; }
# Cargo profiles (Cargo.toml): the widget uses `release-widget` (opt-level 3 compresses
# smaller for it), the host `release` (opt-level "z").
for side in widget host; do
  if [ "$side" = widget ]; then profile=(--profile release-widget); else profile=(--release); fi
  wasm-pack build "${profile[@]}" --target web --mode no-install --no-pack \
    --out-dir "pkg/$side" --out-name monodit_bridge -- --no-default-features --features "$side"
done
# Short import names in .wasm + glue, no tool-metadata sections, minified glue (esbuild);
# see the header of scripts/shrink-pkg.mjs. The .d.ts files stay as wasm-bindgen wrote them.
[ -d node_modules/esbuild ] || { echo "esbuild is missing: run scripts/setup.sh (or npm ci) first." >&2; exit 1; }
node scripts/shrink-pkg.mjs pkg/widget pkg/host
# wasm-bindgen's classes declare `[Symbol.dispose]()`, which TypeScript only knows with the
# esnext.disposable lib: reference it from the typings, so a widget project on a plain
# "lib": ["es2022", "dom"] type-checks without skipLibCheck (tests/types checks exactly that).
for f in pkg/widget/monodit_bridge.d.ts pkg/host/monodit_bridge.d.ts; do
  grep -q 'reference lib="esnext.disposable"' "$f" || sed -i '1i /// <reference lib="esnext.disposable" />' "$f"
done
# wasm-pack writes a `*` .gitignore into each out dir; npm reads it as an .npmignore and would
# leave every pkg/ file out of the published package (git ignores /pkg at the root already).
rm -f pkg/widget/.gitignore pkg/host/.gitignore
# The demo server serves www/; widgets and the dashboard import /pkg/{widget,host}/.
ln -sfn ../pkg www/pkg
for f in pkg/widget/monodit_bridge_bg.wasm pkg/widget/monodit_bridge.js pkg/host/monodit_bridge_bg.wasm pkg/host/monodit_bridge.js; do
  printf '%-36s %8d bytes, %7d gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
