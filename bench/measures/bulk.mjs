// Figure 6: 1,000 optimistic ctx.store.set() calls into the mirror (from a widget into its
// bound bucket, all made at once) vs Dexie bulkPut of the same 1,000 records in the host page
// (one transaction), and Dexie's 1,000 single put() calls as the like-for-like.
import { hostPage, mountWidgets, newUser } from "../lib/browser.mjs";
import { summary, ratio } from "../lib/stats.mjs";

const N = 1000;
const ROUNDS = 3;

export async function run({ browser, baseUrl }) {
  const user = await newUser(baseUrl);
  const { context, page } = await hostPage(browser, baseUrl, user.token);
  try {
    const [w] = await mountWidgets(page, [{ instanceId: "bulk-w" }]);
    await w.evaluate(() => window.bench.setBound(0));
    const optimistic = [];
    const confirmed = [];
    for (let r = 0; r < ROUNDS; r++) {
      const x = await w.evaluate((a) => window.bench.bulkSets(...a), [N]);
      optimistic.push(x.optimisticMs);
      confirmed.push(x.confirmedMs);
    }
    const dexie = await page.evaluate(([n, rounds]) => window.benchHost.dexieWrites(n, rounds), [N, ROUNDS]);
    const o = summary(optimistic);
    const c = summary(confirmed);
    const bulk = summary(dexie.bulk);
    const single = summary(dexie.single);
    return {
      n: N,
      bridgeAllOptimistic: o,
      bridgeAllConfirmed: c,
      dexieBulkPut: bulk,
      dexieSinglePuts: single,
      ratioOptimisticVsBulkPut: ratio(o.median, bulk.median),
      ratioOptimisticVsSinglePuts: ratio(o.median, single.median),
      notes:
        "Bridge: 1,000 set() calls made at once (the port sends them as the host frees its 64 slots; a write frees its " +
        "slot once queued); time from the first set() until the 1,000th optimistic event reached " +
        "the widget (each write: memory, then one IndexedDB transaction for document + outbox), and until the server " +
        "confirmed all 1,000 (queued writes coalesce into few PUTs, in order). Dexie runs in the host page without a port. Times in ms per 1,000.",
    };
  } finally {
    await context.close();
  }
}
