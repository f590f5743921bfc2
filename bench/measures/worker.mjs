// Figure 8 (issue 13): the same two server workloads as figure 7 — batch meta for 100 buckets
// and an indexed collection query — on the Cloudflare Worker under Miniflare/workerd (local
// D1 and R2, started by scripts/bench.sh through scripts/worker.sh) next to the native server,
// in the same run, with the same data loaded into each. There is no target: local Miniflare is
// not production (one workerd process, SQLite-backed D1 on the same 2 cores).
import { newUser } from "../lib/browser.mjs";
import { ratio } from "../lib/stats.mjs";
import { client, load, loadData, PLUGIN, QUERY } from "./server.mjs";

const BUCKETS = 100;
// Smaller than figure 7's 100,000: loading runs through each backend's HTTP API, and a
// Worker request has a time budget; the same items go to both backends.
const ITEMS = 10_000;
const DURATION_MS = 3_000;

/** Loads the data into one backend and measures both workloads there. */
async function measure(baseUrl, log, name) {
  const user = await newUser(baseUrl);
  const http = client(baseUrl, user.token);
  const { buckets, loadSeconds } = await loadData(http, BUCKETS, ITEMS);
  const loadS = loadSeconds;
  // Both must answer the same page, or the figures compare different work.
  const page = JSON.parse(await http("POST", `/v1/collections/${PLUGIN}/items/query`, QUERY));
  if ((page.items ?? []).length !== QUERY.limit) throw new Error(`${name}: the query returned ${page.items?.length} items`);
  const meta = await load(() => http("POST", "/v1/meta", { documents: buckets, assets: [] }), DURATION_MS);
  const query = await load(() => http("POST", `/v1/collections/${PLUGIN}/items/query`, QUERY), DURATION_MS);
  log?.(`  ${name}: loaded ${ITEMS} items in ${loadS.toFixed(1)} s; meta ${meta.requestsPerS} req/s; query ${query.requestsPerS} req/s`);
  return { loadSeconds: Math.round(loadS * 10) / 10, meta, query };
}

export async function run({ baseUrl, log }) {
  // scripts/worker.sh exports the Worker's URL as MONODIT_CONFORMANCE_URL.
  const workerUrl = process.env.MONODIT_BENCH_WORKER_URL ?? process.env.MONODIT_CONFORMANCE_URL;
  if (!workerUrl) throw new Error("no Worker: scripts/bench.sh starts one through scripts/worker.sh");
  const native = await measure(baseUrl, log, "native");
  const worker = await measure(workerUrl, log, "worker");
  const fmt = (r) => `${r.requestsPerS} req/s, p50 ${r.latency.median} ms / p99 ${r.latency.p99} ms`;
  const rows = [
    { name: `Worker batch meta ${BUCKETS} buckets`, ours: fmt(worker.meta), peer: `native ${fmt(native.meta)}`,
      ratio: `${ratio(native.meta.requestsPerS, worker.meta.requestsPerS)}× native/Worker` },
    { name: `Worker indexed query over ${ITEMS / 1000}k items`, ours: fmt(worker.query), peer: `native ${fmt(native.query)}`,
      ratio: `${ratio(native.query.requestsPerS, worker.query.requestsPerS)}× native/Worker` },
  ];
  return {
    native, worker, rows, items: ITEMS, queryShape: QUERY,
    notes:
      `Both backends in the same run with the same ${ITEMS} items and ${BUCKETS} documents, loaded through their HTTP API; ` +
      `8 concurrent keep-alive lanes for ${DURATION_MS / 1000} s each after 50 warm-up requests. The Worker runs under ` +
      "Miniflare/workerd with local D1 (SQLite) and R2 on the same 2 cores: a local figure, not production; no target.",
  };
}
