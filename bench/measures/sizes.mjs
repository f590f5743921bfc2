// Figure 5: what a page downloads, raw / gzip -9 / brotli q11 (node's zlib): the widget-side
// and host-side wasm + JS glue of this build, next to the published minified bundles of
// Comlink, Penpal, idb-keyval and Dexie from node_modules.
import { readFileSync, existsSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { join } from "node:path";

function sizeOf(root, files) {
  const parts = files.map((f) => {
    const buf = readFileSync(join(root, f));
    return {
      raw: buf.length,
      gzip: gzipSync(buf, { level: 9 }).length,
      brotli: brotliCompressSync(buf, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
      }).length,
    };
  });
  const sum = (k) => parts.reduce((n, p) => n + p[k], 0);
  return { files, parts, raw: sum("raw"), gzip: sum("gzip"), brotli: sum("brotli") };
}

const version = (root, name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;

export async function run({ root }) {
  const ours = {
    widget: sizeOf(root, ["pkg/widget/monodit_bridge_bg.wasm", "pkg/widget/monodit_bridge.js"]),
    host: sizeOf(root, ["pkg/host/monodit_bridge_bg.wasm", "pkg/host/monodit_bridge.js"]),
  };
  const peerFiles = {
    comlink: "node_modules/comlink/dist/esm/comlink.min.mjs",
    penpal: "node_modules/penpal/dist/penpal.min.js",
    "idb-keyval": "node_modules/idb-keyval/dist/umd.js",
    dexie: "node_modules/dexie/dist/modern/dexie.min.mjs",
  };
  const peers = {};
  for (const [name, file] of Object.entries(peerFiles)) {
    if (existsSync(join(root, file))) peers[name] = { version: version(root, name), ...sizeOf(root, [file]) };
  }
  return {
    ...ours,
    peers,
    notes: "Whole files, not tree-shaken: idb-keyval's minified UMD build carries every export (its get/set alone is smaller).",
  };
}
