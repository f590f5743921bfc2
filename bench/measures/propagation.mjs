// Figure 2: optimistic propagation, set() in widget A → callback in widget B (real sandboxed
// iframes, same bucket). The stamp travels inside the value; both frames read
// performance.timeOrigin + now(). Peer/floor: a raw postMessage relay A → host page → B.
import { hostPage, mountWidgets, newUser, sleep } from "../lib/browser.mjs";
import { summary, ratio } from "../lib/stats.mjs";

const SAMPLES = 300;
const GAP_MS = 3;

export async function run({ browser, baseUrl }) {
  const user = await newUser(baseUrl);
  const { context, page } = await hostPage(browser, baseUrl, user.token);
  try {
    const config = { storageNamespace: "prop-shared" };
    const [a, b] = await mountWidgets(page, [
      { instanceId: "prop-a", config },
      { instanceId: "prop-b", config },
    ]);
    await a.evaluate(() => window.bench.setBound(0));
    await b.evaluate(() => window.bench.listen());
    await sleep(300); // the subscription is registered on the host before the first sample
    await a.evaluate(([n, gap]) => window.bench.stampedSets(n, gap), [SAMPLES, GAP_MS]);
    await a.evaluate(([n, gap, to]) => window.bench.relaySends(n, gap, to), [SAMPLES, GAP_MS, "prop-b"]);
    await sleep(300);
    const got = await b.evaluate(() => window.bench.received());
    const bridge = summary(got.bridge);
    const relay = summary(got.relay);
    return {
      bridge,
      postMessageRelay: relay,
      ratioMedian: ratio(bridge.median, relay.median),
      lost: SAMPLES - got.bridge.length,
      notes:
        "A awaits each set() (server confirmation) and waits 3 ms before the next, like a user typing; " +
        "B records the optimistic event. The relay is the floor of any iframe-to-iframe design.",
    };
  } finally {
    await context.close();
  }
}
