// Runs the built Worker (crates/worker/build) locally under Miniflare/workerd, used as a
// library: local D1 and R2 (in memory, or under --persist DIR), the shared migrations applied
// as `wrangler d1 migrations apply` would (recorded in d1_migrations), dev routes on, random
// secrets, bound to 127.0.0.1 on a free port. Prints `READY <url>` once /v1/health answers,
// and stops cleanly on SIGTERM/SIGINT. No network: workerd runs from the npm package.
// `--allow-origin` (repeatable) sets MONODIT_ALLOW_ORIGIN, the native `--allow-origin`, and
// `--upload-ttl-secs` sets MONODIT_UPLOAD_TTL_SECS. `GET /cdn-cgi/handler/scheduled` runs the
// cron trigger (the sweep) at once, locally only.
//
//   node scripts/worker-run.mjs [--port N] [--persist DIR] [--allow-origin ORIGIN]...
//                               [--upload-ttl-secs N]
import { Miniflare } from "miniflare";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const port = Number(arg("--port") ?? 0);
const origins = process.argv.flatMap((a, i) =>
  a === "--allow-origin" && i + 1 < process.argv.length ? [process.argv[i + 1]] : [],
);
const persist = arg("--persist");
const uploadTtl = arg("--upload-ttl-secs");
const build = join(root, "crates/worker/build");

const mf = new Miniflare({
  modules: true,
  scriptPath: join(build, "index.js"),
  modulesRoot: build,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
  compatibilityDate: "2026-04-26",
  d1Databases: { DB: "monodit-local" },
  r2Buckets: { OBJECTS: "monodit-objects-local" },
  ...(persist ? { d1Persist: join(persist, "d1"), r2Persist: join(persist, "r2") } : {}),
  bindings: {
    MONODIT_DEV: "1",
    MONODIT_ALLOW_ORIGIN: origins.join(","),
    ...(uploadTtl ? { MONODIT_UPLOAD_TTL_SECS: uploadTtl } : {}),
    URL_SECRET: randomBytes(32).toString("hex"),
    CURSOR_SECRET: randomBytes(32).toString("hex"),
  },
  unsafeTriggerHandlers: true,
  host: "127.0.0.1",
  port,
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  await mf.dispose().catch(() => {});
  process.exit(code);
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

try {
  const url = await mf.ready;
  const db = await mf.getD1Database("DB");
  await applyMigrations(db, join(root, "server/migrations"));
  const health = await fetch(new URL("/v1/health", url));
  if (!health.ok) throw new Error(`/v1/health answered ${health.status}`);
  console.log(`READY ${url.origin}`);
} catch (e) {
  console.error(`worker-run: ${e?.stack ?? e}`);
  await stop(1);
}

// The migration files, in name order, each applied once: statements end with `;` at a line's
// end and comments stand on their own lines (the conventions in server/README.md), so the
// split is exact. One batch per file: a file applies whole or not at all.
async function applyMigrations(db, dir) {
  await db
    .prepare(
      "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, " +
        "name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
    )
    .run();
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  for (const name of files) {
    const done = await db.prepare("SELECT 1 FROM d1_migrations WHERE name = ?1").bind(name).first();
    if (done) continue;
    const text = readFileSync(join(dir, name), "utf8")
      .split("\n")
      .filter((l) => !l.trim().startsWith("--"))
      .join("\n");
    const statements = text
      .split(/;\s*\n/)
      .map((s) => s.trim().replace(/;$/, ""))
      .filter((s) => s.length > 0)
      .map((s) => db.prepare(s));
    statements.push(db.prepare("INSERT INTO d1_migrations (name) VALUES (?1)").bind(name));
    await db.batch(statements);
  }
}
