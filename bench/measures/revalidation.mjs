// Figure 3: what one visibility re-check costs for K active buckets watched by N widgets:
// HTTP requests, bytes (headers + bodies, both ways, from Playwright's request sizes) and
// full-document fetches, (a) when nothing changed and (b) after another device changed one
// bucket; next to per-key revalidation as SWR / TanStack Query do it (one meta GET per key,
// deduplicated across widgets: K requests), issued for real from the same page.
import { hostPage, mountWidgets, newUser, sleep } from "../lib/browser.mjs";

const KS = (process.env.MONODIT_BENCH_K ?? "1,10,100").split(",").map(Number);
const NS = (process.env.MONODIT_BENCH_N ?? "1,10,50").split(",").map(Number);
const SETTLE_MS = 2_500; // past the engine's 2 s read dedupe, so the page is quiet
const COLLECT_MS = 1_000; // a re-check is one batch window (10 ms) + one round trip
const THROTTLE_MS = 6_000; // the engine re-checks at most once per 5 s (margin for a loaded machine)
const DRAIN_MS = 5_000; // longest wait for requests of a window to finish

/** Writes each bucket's document on the server, as another device would. */
async function putDocs(baseUrl, token, ids, marker) {
  for (const id of ids) {
    const res = await fetch(`${baseUrl}/v1/documents/${encodeURIComponent(id)}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ value: { marker, text: "x".repeat(900) }, schemaId: "bench.doc", schemaVersion: 1 }),
    });
    if (!res.ok) throw new Error(`PUT ${id}: HTTP ${res.status} ${await res.text()}`);
  }
}

/** Records every /v1/ request of `page` between start() and stop(); stop() waits (bounded)
 * until every request started in the window has finished, so a slow answer is not lost. */
function recorder(page) {
  let active = null;
  let started = 0;
  const isApi = (req) => new URL(req.url()).pathname.startsWith("/v1/");
  page.on("request", (req) => {
    if (active && isApi(req)) started++;
  });
  const done = (req, ok) => {
    if (!active || !isApi(req)) return;
    active.push(
      (ok ? req.sizes() : Promise.resolve(null)).then(async (s) => {
        const res = ok ? await req.response() : null;
        return {
          method: req.method(),
          path: new URL(req.url()).pathname,
          status: res?.status() ?? 0,
          bytes: s ? s.requestHeadersSize + s.requestBodySize + s.responseHeadersSize + s.responseBodySize : 0,
        };
      }),
    );
  };
  page.on("requestfinished", (req) => done(req, true));
  page.on("requestfailed", (req) => done(req, false));
  return {
    start() {
      active = [];
      started = 0;
    },
    async stop() {
      const deadline = Date.now() + DRAIN_MS;
      while (active.length < started && Date.now() < deadline) await sleep(50);
      const list = await Promise.all(active);
      active = null;
      // A full fetch: a whole document, or a whole asset list (what a meta check should avoid).
      const docs = list.filter((r) => r.method === "GET" && /^\/v1\/documents\/[^/]+$/.test(r.path));
      const lists = list.filter((r) => r.method === "GET" && /^\/v1\/assets\/[^/]+$/.test(r.path));
      return {
        requests: list.length,
        bytes: list.reduce((n, r) => n + r.bytes, 0),
        fullFetches: docs.length + lists.length,
        documentFetches: docs.length,
        assetListFetches: lists.length,
        notOk: list.filter((r) => r.status < 200 || r.status >= 300).length,
        byRoute: list.reduce((m, r) => {
          const key = `${r.method} ${r.path.replace(/^(\/v1\/\w+\/)[^/]+/, "$1{id}")}`;
          m[key] = (m[key] ?? 0) + 1;
          return m;
        }, {}),
      };
    },
  };
}

async function oneCase(browser, baseUrl, token, k, n) {
  const { context, page } = await hostPage(browser, baseUrl, token);
  try {
    const rec = recorder(page);
    const namespaces = Array.from({ length: k }, (_, i) => `reval-${i}`);
    const widgets = Array.from({ length: n }, (_, i) => ({ instanceId: `reval-w${i}` }));
    const frames = await mountWidgets(page, widgets);
    await Promise.all(frames.map((f) => f.evaluate((ns) => window.bench.watch(ns), namespaces)));
    await sleep(SETTLE_MS);

    // Each re-check waits out the engine's 5 s throttle after the previous one.
    const recheck = async (since) => {
      await sleep(Math.max(0, THROTTLE_MS - (Date.now() - since)));
      rec.start();
      const t = Date.now();
      await page.evaluate(() => window.benchHost.visibilityRecheck());
      await sleep(COLLECT_MS);
      return { at: t, counts: await rec.stop() };
    };
    const first = await recheck(0);
    const steady = await recheck(first.at);
    await putDocs(baseUrl, token, [namespaces[0]], `changed-${k}-${n}`);
    const changed = await recheck(steady.at);
    const unchanged = first.counts;
    const steadyUnchanged = steady.counts;
    const oneChanged = changed.counts;

    rec.start();
    await page.evaluate((ids) => window.benchHost.perKeyMeta(ids), namespaces);
    await sleep(200);
    const perKey = await rec.stop();
    return { k, n, unchanged, steadyUnchanged, oneChanged, perKey, perKeyWithoutDedupe: { requests: k * n } };
  } finally {
    await context.close();
  }
}

export async function run({ browser, baseUrl, log }) {
  const user = await newUser(baseUrl);
  await putDocs(baseUrl, user.token, Array.from({ length: Math.max(...KS) }, (_, i) => `reval-${i}`), "v1");
  const cases = [];
  for (const k of KS) {
    for (const n of NS) {
      const c = await oneCase(browser, baseUrl, user.token, k, n);
      log?.(`  K=${k} N=${n}: ${c.unchanged.requests} req / ${c.unchanged.bytes} B ${JSON.stringify(c.unchanged.byRoute)} ` +
        `(per-key ${c.perKey.requests} req / ${c.perKey.bytes} B)`);
      cases.push(c);
    }
  }
  return {
    cases,
    notes:
      "Re-check triggered by the engine's own visibilitychange listener. Bytes = request + response headers and bodies. " +
      "'unchanged' is the first re-check after the widgets mounted and read their buckets, 'steadyUnchanged' the next one " +
      "(nothing changed in between), 'oneChanged' the one after another client rewrote one bucket on the server. " +
      "Per-key: K meta GETs (SWR/TanStack dedupe by key across widgets); without dedupe it would be K×N (computed).",
  };
}
