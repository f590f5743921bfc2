// Figure 1: warm ctx.store.get() through the bridge vs a Comlink call over a MessageChannel
// (both from a sandboxed iframe to its host page); cold get served from IndexedDB (fresh
// Host, value only in the mirror) vs idb-keyval get of the same value.
import { hostPage, mountWidgets, widgetFrame, newUser, openHost, sleep } from "../lib/browser.mjs";
import { summary, ratio } from "../lib/stats.mjs";

const WARM_ROUNDS = 5;
const WARM_PER_ROUND = 200;
const COLD_KEYS = 100;
/** Widgets mounted at once after a reload, and reloads, for the first-get figure. */
const FIRST_WIDGETS = 10;
const FIRST_ROUNDS = 3;

export async function run({ browser, baseUrl }) {
  const user = await newUser(baseUrl);
  const { context, page } = await hostPage(browser, baseUrl, user.token);
  try {
    const [w] = await mountWidgets(page, [{ instanceId: "rpc-w" }]);
    await w.evaluate(() => window.bench.setBound(0));
    await page.evaluate(() => window.benchHost.comlinkFrame("comlink-w"));
    const c = await widgetFrame(page, "comlink-w");

    // Interleaved rounds so both see the same machine state.
    const bridgeWarm = [];
    const comlinkWarm = [];
    for (let r = 0; r < WARM_ROUNDS; r++) {
      bridgeWarm.push(...(await w.evaluate((n) => window.bench.warmGets(n), WARM_PER_ROUND)));
      comlinkWarm.push(...(await c.evaluate((n) => window.bench.gets(n), WARM_PER_ROUND)));
    }

    const keys = Array.from({ length: COLD_KEYS }, (_, i) => `cold-${i}`);
    await w.evaluate((ns) => window.bench.setNamespaces(ns), keys);
    await page.evaluate((k) => window.benchHost.idbKeyvalSetup(k), keys);
    await sleep(500);
    // A reload gives a fresh Host whose memory is empty; the values are only in IndexedDB.
    await openHost(page, baseUrl, user.token);
    const [w2] = await mountWidgets(page, [{ instanceId: "rpc-w" }]);
    const bridgeCold = await w2.evaluate((ns) => window.bench.coldGets(ns), keys);
    await openHost(page, baseUrl, user.token);
    const idbCold = await page.evaluate((k) => window.benchHost.idbKeyvalGets(k), keys);
    await openHost(page, baseUrl, user.token);
    await page.evaluate(() => window.benchHost.comlinkFrame("comlink-cold"));
    const c2 = await widgetFrame(page, "comlink-cold");
    const comlinkIdbCold = await c2.evaluate((k) => window.bench.coldGets(k), keys);

    // First get of a mounted widget after a reload: each widget reads its bound bucket as it
    // starts (the host warmed the bound buckets of the widgets it mounted, in one IndexedDB
    // transaction); the peer design reads its key through Comlink from idb-keyval.
    const names = Array.from({ length: FIRST_WIDGETS }, (_, i) => `first-${i}`);
    const written = await mountWidgets(page, names.map((instanceId) => ({ instanceId })));
    await Promise.all(written.map((f, i) => f.evaluate((n) => window.bench.setBound(n), i)));
    await page.evaluate((k) => window.benchHost.idbKeyvalSetup(k), names);
    const bridgeFirst = [];
    const comlinkFirst = [];
    for (let r = 0; r < FIRST_ROUNDS; r++) {
      await openHost(page, baseUrl, user.token);
      const frames = await mountWidgets(page, names.map((instanceId) => ({ instanceId })));
      bridgeFirst.push(...(await Promise.all(frames.map((f) => f.evaluate(() => window.bench.firstGetMs())))));
      await openHost(page, baseUrl, user.token);
      await page.evaluate((n) => Promise.all(n.map((x) => window.benchHost.comlinkFrame(x))), names);
      const cframes = await Promise.all(names.map((n) => widgetFrame(page, n)));
      const got = await Promise.all(cframes.map((f) => f.evaluate(() => window.bench.firstGetMs())));
      if (got.some((v) => v == null)) throw new Error("Comlink + idb-keyval lost a first value");
      comlinkFirst.push(...got);
    }

    const bw = summary(bridgeWarm);
    const cw = summary(comlinkWarm);
    const bc = summary(bridgeCold);
    const ic = summary(idbCold);
    const cic = summary(comlinkIdbCold);
    const bf = summary(bridgeFirst);
    const cf = summary(comlinkFirst);
    return {
      warm: {
        bridge: bw, comlink: cw,
        ratioMedian: ratio(bw.median, cw.median), ratioMean: ratio(bw.mean, cw.mean), ratioP99: ratio(bw.p99, cw.p99),
      },
      cold: {
        bridge: bc, idbKeyval: ic, comlinkIdbKeyval: cic,
        ratioMedian: ratio(bc.median, ic.median), ratioMean: ratio(bc.mean, ic.mean), ratioP99: ratio(bc.p99, ic.p99),
        ratioMedianVsComlinkIdbKeyval: ratio(bc.median, cic.median),
      },
      first: {
        widgets: FIRST_WIDGETS, reloads: FIRST_ROUNDS, bridge: bf, comlinkIdbKeyval: cf,
        ratioMedian: ratio(bf.median, cf.median), ratioMean: ratio(bf.mean, cf.mean),
      },
      notes:
        "Warm: both calls go from a sandbox=\"allow-scripts\" iframe to the host page over a MessagePort. " +
        "Cold: the bridge answers from IndexedDB after a page reload (new Host, empty memory) and crosses the port; " +
        "idb-keyval reads the same value in the host page itself (no port; a sandboxed widget cannot open IndexedDB at all), " +
        "and 'Comlink + idb-keyval' is the same design as the bridge built from the peers (port + IndexedDB in the host). " +
        `First get: after a reload, ${FIRST_WIDGETS} widgets are mounted at once and each times its first get() of its bound bucket ` +
        "as it starts (the host warms the bound buckets of the widgets it mounts in one IndexedDB transaction); the peer frames " +
        `each read their own key through Comlink from idb-keyval as they start; ${FIRST_ROUNDS} reloads each.`,
    };
  } finally {
    await context.close();
  }
}
