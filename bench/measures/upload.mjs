// Figure 4: a 64 MiB upload through the bridge (widget → port → host → backend) vs a direct
// fetch() upload of the same bytes from the host page to the same server. Host heap growth:
// CDP Runtime.getHeapUsage on the host page (JS heap + ArrayBuffer backing stores), sampled
// every 20 ms during the upload, peak minus a post-GC baseline. The Blobs are made before the
// baseline, so their bytes are not counted as upload cost for either side.
import { hostPage, mountWidgets, newUser, sleep } from "../lib/browser.mjs";
import { summary, ratio } from "../lib/stats.mjs";

const BYTES = 64 * 1024 * 1024;
const ROUNDS = 5;
/** One upload of 1 GiB through the bridge per backend: the host's heap must stay flat. */
const BIG = 1024 * 1024 * 1024;

async function heap(cdp) {
  const h = await cdp.send("Runtime.getHeapUsage");
  return h.usedSize + (h.backingStorageSize ?? 0);
}

/** Runs `upload()` while sampling the heap; resolves {ms, growth}. */
async function sampled(cdp, upload) {
  await cdp.send("HeapProfiler.collectGarbage");
  await sleep(100);
  const base = await heap(cdp);
  let peak = base;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await heap(cdp));
      await sleep(20);
    }
  })();
  try {
    const ms = await upload();
    return { ms, growth: peak - base };
  } finally {
    running = false;
    await sampler;
  }
}

export async function run({ browser, baseUrl }) {
  const user = await newUser(baseUrl);
  const { context, page } = await hostPage(browser, baseUrl, user.token);
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send("HeapProfiler.enable");
    const config = { assetBucketId: "upload-bench" };
    const [w] = await mountWidgets(page, [{ instanceId: "upload-w", config }]);
    await w.evaluate((n) => window.bench.prepareBlob(n), BYTES);
    await page.evaluate((n) => window.benchHost.prepareBlob(n), BYTES);
    const bridge = [];
    const direct = [];
    for (let r = 0; r < ROUNDS; r++) {
      bridge.push(await sampled(cdp, () => w.evaluate(() => window.bench.upload())));
      direct.push(await sampled(cdp, () => page.evaluate((b) => window.benchHost.directUpload(b), "upload-bench")));
    }
    const mbps = (ms) => Math.round((BYTES / 1e6 / (ms / 1000)) * 10) / 10;
    const big = { native: await bigUpload(browser, baseUrl, baseUrl) };
    // scripts/worker.sh exports the Worker's URL (bench.sh runs the driver under it).
    const workerUrl = process.env.MONODIT_CONFORMANCE_URL;
    if (workerUrl) big.worker = await bigUpload(browser, baseUrl, workerUrl);
    const b = summary(bridge.map((x) => x.ms));
    const d = summary(direct.map((x) => x.ms));
    const bridgeGrowth = Math.max(...bridge.map((x) => x.growth));
    const directGrowth = Math.max(...direct.map((x) => x.growth));
    return {
      bytes: BYTES,
      bridge: { ms: b, mbPerS: mbps(b.median), heapGrowthMaxBytes: bridgeGrowth },
      direct: { ms: d, mbPerS: mbps(d.median), heapGrowthMaxBytes: directGrowth },
      throughputRatio: ratio(d.median, b.median),
      heapGrowthFractionOfFile: Math.round((bridgeGrowth / BYTES) * 10000) / 10000,
      big,
      notes: `${ROUNDS} rounds, alternating. throughputRatio = bridge MB/s ÷ direct MB/s. ` +
        "Heap = usedSize + backingStorageSize of the host page's isolate (which also hosts same-process iframes). " +
        "Then one 1 GiB upload through the bridge per backend (native; the Worker under Miniflare when bench.sh " +
        "started it), with the host page's heap sampled the same way.",
    };
  } finally {
    await context.close();
  }
}

/** One BIG upload through the bridge to `backend` (the page is served by `baseUrl`). */
async function bigUpload(browser, baseUrl, backend) {
  const user = await newUser(backend);
  const { context, page } = await hostPage(browser, baseUrl, user.token, backend === baseUrl ? undefined : backend);
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send("HeapProfiler.enable");
    const [w] = await mountWidgets(page, [{ instanceId: "upload-big", config: { assetBucketId: "upload-big" } }]);
    await w.evaluate((n) => window.bench.prepareBlob(n), BIG);
    const { ms, growth } = await sampled(cdp, () => w.evaluate(() => window.bench.upload()));
    return {
      bytes: BIG,
      ms: Math.round(ms),
      mbPerS: Math.round((BIG / 1e6 / (ms / 1000)) * 10) / 10,
      heapGrowthMaxBytes: growth,
      heapGrowthFractionOfFile: Math.round((growth / BIG) * 100000) / 100000,
    };
  } finally {
    await context.close();
  }
}
