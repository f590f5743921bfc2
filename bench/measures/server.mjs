// Figure 7 (issue 3 "Speed"): the backend under load from a client on 127.0.0.1 — batch meta
// for 100 buckets (POST /v1/meta) and an indexed collection query over 100,000 items — as
// requests/s and p50/p99, next to raw SQLite (rusqlite, bench/rawsql) running the same SQL
// on the same database file in the same run, when that peer is built.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { newUser } from "../lib/browser.mjs";
import { summary, ratio } from "../lib/stats.mjs";

const BUCKETS = 100;
const ITEMS = 100_000;
const BATCH = 1000; // api.rs MAX_COLLECTION_BATCH
const CONCURRENCY = 8;
const DURATION_MS = 5_000;
const MAX_REQUESTS = 200_000;

export const PLUGIN = "benchcoll";
export const manifest = {
  id: PLUGIN,
  name: "Bench collections",
  widgetType: "dynamic",
  storage: { items: { indexes: ["status", ["status", "rank"]] } },
};
/** The query: equality on one indexed field, ordered by the second field of the composite. */
export const QUERY = { where: { status: "open" }, orderBy: { rank: "desc" }, limit: 50 };

export function client(baseUrl, token) {
  return async (method, path, body) => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return text;
  };
}

/** `CONCURRENCY` lanes issue `call()` back to back for `DURATION_MS` (and ≤ MAX_REQUESTS). */
export async function load(call, durationMs = DURATION_MS) {
  for (let i = 0; i < 50; i++) await call(); // warm-up
  const lat = [];
  const start = performance.now();
  const end = start + durationMs;
  const lane = async () => {
    while (performance.now() < end && lat.length < MAX_REQUESTS) {
      const t = performance.now();
      await call();
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = (performance.now() - start) / 1000;
  return { requestsPerS: Math.round(lat.length / seconds), latency: summary(lat) };
}

/** The raw SQLite peer (bench/rawsql), when built: same SQL, same file, same run. */
function rawPeer(root, dbPath, userId) {
  const bin = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "release", "monodit-bench-rawsql");
  if (!dbPath || !existsSync(bin)) throw new Error(`raw peer not built (${bin})`);
  const out = execFileSync(bin, [dbPath, userId, PLUGIN, "items", String(BUCKETS), JSON.stringify(QUERY), JSON.stringify(manifest)], {
    encoding: "utf8",
    timeout: 60_000,
  });
  const raw = JSON.parse(out);
  // The peer must have done the same work, or its figure means nothing.
  if (raw.metaFound !== BUCKETS || raw.queryRows !== QUERY.limit + 1 && raw.queryRows !== QUERY.limit) {
    throw new Error(`raw peer saw ${raw.metaFound} buckets and ${raw.queryRows} rows`);
  }
  return raw;
}

/** Loads `buckets` documents and `items` collection items through the HTTP API (figures 7, 8). */
export async function loadData(http, bucketCount, itemCount) {
  const buckets = Array.from({ length: bucketCount }, (_, i) => `meta-${i}`);
  for (const id of buckets) {
    await http("PUT", `/v1/documents/${id}`, { value: { i: id }, schemaId: "bench.doc", schemaVersion: 1 });
  }
  await http("PUT", "/v1/instances/bench-coll-1", { kind: "widget", manifest, config: {} });
  const statuses = ["open", "closed", "pending", "archived"];
  const t = performance.now();
  for (let b = 0; b < itemCount / BATCH; b++) {
    const items = Array.from({ length: BATCH }, (_, j) => {
      const n = b * BATCH + j;
      return { id: `i${n}`, data: { status: statuses[n % 4], rank: n, title: `Item ${n}` } };
    });
    await http("POST", `/v1/collections/${PLUGIN}/items/putMany`, { items });
  }
  return { buckets, loadSeconds: (performance.now() - t) / 1000 };
}

export async function run({ baseUrl, root, log }) {
  const user = await newUser(baseUrl);
  const http = client(baseUrl, user.token);

  const { buckets, loadSeconds } = await loadData(http, BUCKETS, ITEMS);
  log?.(`  loaded ${ITEMS} items in ${loadSeconds.toFixed(1)} s`);

  const meta = await load(() => http("POST", "/v1/meta", { documents: buckets, assets: [] }));
  log?.(`  batch meta: ${meta.requestsPerS} req/s`);
  const query = await load(() => http("POST", `/v1/collections/${PLUGIN}/items/query`, QUERY));
  log?.(`  query: ${query.requestsPerS} req/s`);

  let raw = null;
  let rawError = null;
  try {
    raw = rawPeer(root, process.env.MONODIT_BENCH_DB, user.userId);
  } catch (err) {
    rawError = String(err.message ?? err).split("\n")[0];
  }
  const fmt = (r) => `${r.requestsPerS} req/s, p50 ${r.latency.median} ms / p99 ${r.latency.p99} ms`;
  const fmtRaw = (r) => `raw rusqlite ${r.perS}/s, p50 ${r.latency.median} ms / p99 ${r.latency.p99} ms`;
  const rows = [
    { name: `batch meta ${BUCKETS} buckets`, ours: fmt(meta), peer: raw ? fmtRaw(raw.meta) : "raw peer not run",
      ratio: raw ? `${ratio(raw.meta.perS, meta.requestsPerS)}× raw/HTTP` : "–" },
    { name: `indexed query over ${ITEMS / 1000}k items`, ours: fmt(query), peer: raw ? fmtRaw(raw.query) : "raw peer not run",
      ratio: raw ? `${ratio(raw.query.perS, query.requestsPerS)}× raw/HTTP` : "–" },
  ];
  return {
    meta, query, raw, rawError, rows, queryShape: QUERY,
    notes:
      `HTTP: ${CONCURRENCY} concurrent keep-alive lanes from Node's fetch on the same 2 cores as the server, ` +
      `${DURATION_MS / 1000} s each after 50 warm-up requests. Raw: one rusqlite connection on the same SQLite file ` +
      "running the same statements (the planner's SQL for the query), single-threaded, no HTTP/JSON.",
  };
}
