// Shrinks what a page downloads from one wasm-pack output directory (pkg/widget, pkg/host),
// after wasm-pack (wasm-bindgen + wasm-opt) wrote it. Run by scripts/build.sh:
//
//   node scripts/shrink-pkg.mjs pkg/widget pkg/host
//
// 1. Import names. wasm-bindgen names every JS import `__wbg_<name>_<16 hex hash>` under the
//    module "./monodit_bridge_bg.js"; each name sits in the .wasm and again as a key of the
//    glue's import object, and the hashes do not compress. They become short names ("a",
//    "b", …, module "a") in both files. Functions the .wasm imports straight from a
//    hand-written module (`snippets/…/client.js`, when no glue adaptor is needed) keep their
//    names; only their module becomes short ("s0", "s1", …). Export names are left alone:
//    they are the `InitOutput` type of monodit_bridge_bg.wasm.d.ts.
// 2. The .wasm's `producers` and `target_features` custom sections are dropped (tool
//    metadata; nothing reads them at run time).
// 3. The JS glue is minified with esbuild (ES module, same exports). Hand-written JS that
//    wasm-bindgen copied into `snippets/` (the widget's `ctx` facades, src/widget/ctx.js) is
//    bundled into the glue and the `snippets/` folder removed: a page downloads one module,
//    and the npm package ships only `pkg/*/*.js`. The .d.ts files are not touched.
//
// The result is checked before it is written: the .wasm must compile, every import it names
// must be a key of the glue's import object, the minified glue must keep its exports, and
// the pair must instantiate in Node (initSync).
// Running it twice on the same directory is refused (the second run would find no
// wasm-bindgen import names); rebuild with scripts/build.sh instead.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";

const WASM = "monodit_bridge_bg.wasm";
const GLUE = "monodit_bridge.js";
const MODULE = "./monodit_bridge_bg.js";
const SHORT_MODULE = "a";
const SNIPPET_PREFIX = "./snippets/";
const DROP_SECTIONS = new Set(["producers", "target_features"]);

// Names are valid JS identifiers that are not reserved words: lowercase letters first, then
// two characters (`aa`, `ab`, … never `do`/`if`/`in`, which are excluded below).
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
const RESERVED = new Set(["do", "if", "in"]);
function* shortNames() {
  for (const c of ALPHABET) yield c;
  for (const a of ALPHABET) for (const b of ALPHABET) if (!RESERVED.has(a + b)) yield a + b;
}

const leb = (buf, at) => {
  let value = 0;
  let shift = 0;
  let pos = at;
  for (;;) {
    const byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return [value, pos];
  }
};
const encLeb = (n) => {
  const out = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
};
const encName = (s) => {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([encLeb(b.length), b]);
};

// Returns the length in bytes of one import descriptor (kind byte included) starting at `at`.
function descriptorEnd(buf, at) {
  const kind = buf[at];
  let pos = at + 1;
  const skipLimits = () => {
    const flags = buf[pos++];
    [, pos] = leb(buf, pos);
    if (flags & 1) [, pos] = leb(buf, pos);
  };
  switch (kind) {
    case 0: // function: type index
      [, pos] = leb(buf, pos);
      return pos;
    case 1: // table: reftype + limits
      pos += 1;
      skipLimits();
      return pos;
    case 2: // memory: limits
      skipLimits();
      return pos;
    case 3: // global: valtype + mutability
      return pos + 2;
    case 4: // tag: attribute + type index
      pos += 1;
      [, pos] = leb(buf, pos);
      return pos;
    default:
      throw new Error(`unknown import kind ${kind}`);
  }
}

/** Rewrites the .wasm: short import names, no tool-metadata sections. */
function rewriteWasm(buf) {
  if (buf.readUInt32LE(0) !== 0x6d736100) throw new Error("not a wasm module");
  const names = shortNames();
  const renamed = new Map();
  const snippetModules = new Map();
  const out = [buf.subarray(0, 8)];
  let pos = 8;
  while (pos < buf.length) {
    const sectionStart = pos;
    const id = buf[pos++];
    let size;
    [size, pos] = leb(buf, pos);
    const end = pos + size;
    if (id === 0) {
      const [len, at] = leb(buf, pos);
      const name = buf.subarray(at, at + len).toString("utf8");
      if (!DROP_SECTIONS.has(name)) out.push(buf.subarray(sectionStart, end));
    } else if (id === 2) {
      let count;
      let p = pos;
      [count, p] = leb(buf, p);
      const parts = [encLeb(count)];
      for (let i = 0; i < count; i++) {
        let len;
        [len, p] = leb(buf, p);
        const module = buf.subarray(p, p + len).toString("utf8");
        p += len;
        [len, p] = leb(buf, p);
        const field = buf.subarray(p, p + len).toString("utf8");
        p += len;
        const descEnd = descriptorEnd(buf, p);
        const desc = buf.subarray(p, descEnd);
        p = descEnd;
        if (module === MODULE) {
          if (!renamed.has(field)) renamed.set(field, names.next().value);
          parts.push(encName(SHORT_MODULE), encName(renamed.get(field)), desc);
        } else if (module.startsWith(SNIPPET_PREFIX)) {
          if (!snippetModules.has(module)) snippetModules.set(module, `s${snippetModules.size}`);
          parts.push(encName(snippetModules.get(module)), encName(field), desc);
        } else {
          parts.push(encName(module), encName(field), desc);
        }
      }
      if (p !== end) throw new Error("import section not fully read");
      const body = Buffer.concat(parts);
      out.push(Buffer.from([2]), encLeb(body.length), body);
    } else {
      out.push(buf.subarray(sectionStart, end));
    }
    pos = end;
  }
  return { wasm: Buffer.concat(out), renamed, snippetModules };
}

const escapeRe = (s) => s.replace(/[$]/g, "\\$");

/** Renames the import object's keys in the (unminified) glue to match the new .wasm. */
function rewriteGlue(js, renamed, snippetModules) {
  let out = js;
  for (const [from, to] of renamed) {
    // Keys of the import object are written `    name: function(…) {` by wasm-bindgen.
    const re = new RegExp(`(^|[\\s{,])${escapeRe(from)}:`, "gm");
    const hits = out.match(re)?.length ?? 0;
    if (hits !== 1) throw new Error(`import ${from}: expected one key in ${GLUE}, found ${hits}`);
    out = out.replace(re, `$1${to}:`);
  }
  for (const [from, to] of snippetModules) {
    // wasm-bindgen writes one key per imported function, `"<module>": importN,` (the same
    // module each time): all of them get the short name.
    const key = `"${from}":`;
    if (!out.includes(key)) throw new Error(`${GLUE}: no import module key ${from}`);
    out = out.split(key).join(`${to}:`);
  }
  const moduleKey = `"${MODULE}": import0`;
  if (out.split(moduleKey).length !== 2) throw new Error(`${GLUE}: import module key not found once`);
  return out.replace(moduleKey, `${SHORT_MODULE}: import0`);
}

const exportsOf = (code) =>
  [...code.matchAll(/^export (?:class|function|const|let) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);

async function shrink(dir) {
  const wasmPath = join(dir, WASM);
  const gluePath = join(dir, GLUE);
  const wasmIn = readFileSync(wasmPath);
  const glueIn = readFileSync(gluePath, "utf8");

  const { wasm, renamed, snippetModules } = rewriteWasm(wasmIn);
  if (renamed.size === 0) throw new Error(`${wasmPath}: no "${MODULE}" imports (already shrunk? run scripts/build.sh)`);
  const module = new WebAssembly.Module(wasm); // throws when the rewrite broke the module
  const glue = rewriteGlue(glueIn, renamed, snippetModules);

  // Every import of the new module must be provided by the glue under its new name.
  const snippetNames = new Set(snippetModules.values());
  for (const imp of WebAssembly.Module.imports(module)) {
    if (snippetNames.has(imp.module)) {
      if (!new RegExp(`(^|[\\s{,])${imp.module}:`, "m").test(glue)) {
        throw new Error(`${gluePath}: no import module key ${imp.module}`);
      }
      continue;
    }
    if (imp.module !== SHORT_MODULE) throw new Error(`${wasmPath}: unexpected import module ${imp.module}`);
    if (!new RegExp(`(^|[\\s{,])${escapeRe(imp.name)}:`, "m").test(glue)) {
      throw new Error(`${gluePath}: no import key ${imp.name}`);
    }
  }

  // Keep the header that points TypeScript/Deno at the .d.ts (a comment, so esbuild drops it).
  const header = glueIn.match(/^\/\* @ts-self-types=.*?\*\/\n/)?.[0] ?? "";
  const snippets = join(dir, "snippets");
  const { outputFiles } = buildSync({
    stdin: { contents: glue, resolveDir: resolve(dir), sourcefile: GLUE },
    bundle: true,
    format: "esm",
    minify: true,
    write: false,
    logLevel: "warning",
  });
  const code = outputFiles[0].text;
  if (/\bimport\s*[{("']|\bfrom\s*["']/.test(code.replace(/import\.meta/g, ""))) {
    throw new Error(`${gluePath}: the bundled glue still imports a module`);
  }
  const minified = header + code;

  const before = exportsOf(glueIn).sort();
  const named = /export\s*\{([^}]*)\}/.exec(code)?.[1] ?? "";
  const after = named.split(",").map((s) => s.trim().split(/\s+as\s+/).pop()).filter(Boolean);
  for (const name of [...before, "default", "initSync"]) {
    if (!after.includes(name)) throw new Error(`${gluePath}: export ${name} lost by minification`);
  }

  // Instantiate the pair as a page would (initSync links every import; a missing or renamed
  // key fails here with a LinkError instead of in a browser).
  const glueModule = await import(`data:text/javascript;base64,${Buffer.from(minified).toString("base64")}`);
  glueModule.initSync({ module });

  writeFileSync(wasmPath, wasm);
  writeFileSync(gluePath, minified);
  if (existsSync(snippets)) rmSync(snippets, { recursive: true });
  console.log(
    `${dir}: ${renamed.size} imports renamed; ${WASM} ${wasmIn.length} -> ${wasm.length} bytes, ` +
      `${GLUE} ${Buffer.byteLength(glueIn)} -> ${Buffer.byteLength(minified)} bytes`,
  );
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node scripts/shrink-pkg.mjs <pkg dir>...");
  process.exit(2);
}
for (const dir of dirs) await shrink(dir);
