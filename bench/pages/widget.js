// The bench widget: a real widget (widget build of monodit-bridge, connect() in a
// sandbox="allow-scripts" iframe). Playwright calls `window.bench.*` inside this frame; every
// timing is taken here, on the widget's side of the port, as a widget author would see it.
import init, { connect } from "/pkg/widget/monodit_bridge.js";
import { sampleValue, record } from "./manifest.js";

await init();
const ctx = await connect();
// What a widget does first after a page (re)load: read its bound bucket (figure 1's first
// get of a mounted widget; the host warms bound buckets while the iframe loads).
const firstGet = (async () => {
  const t = performance.now();
  await ctx.store.get(null);
  return performance.now() - t;
})();
const noError = () => {};
/** Wall-clock in ms with sub-ms resolution, comparable across frames of one browser. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Propagation samples received by this widget (figure 2). */
const received = { bridge: [], relay: [] };
window.addEventListener("message", (ev) => {
  if (ev.source === window.parent && ev.data?.benchRelayed) {
    received.relay.push(now() - ev.data.benchRelayed.t0);
  }
});

window.bench = {
  instanceId: ctx.instanceId,

  /** How long this document's first get() of its bound bucket took. */
  firstGetMs: () => firstGet,

  /** Warm get(): the bound bucket, after one get that loads it. */
  async warmGets(n) {
    await ctx.store.get(null);
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await ctx.store.get(null);
      ms.push(performance.now() - t);
    }
    return ms;
  },

  /** Writes the sample value to the bound bucket (setup for warm gets). */
  async setBound(i = 0) {
    await ctx.store.set(sampleValue(i), null);
  },

  /** Writes the sample value to each namespace, awaiting the server's confirmation. */
  async setNamespaces(namespaces) {
    for (let i = 0; i < namespaces.length; i++) await ctx.store.set(sampleValue(i), namespaces[i]);
  },

  /** Cold get(): one timed get per namespace, right after a fresh Host (memory empty). */
  async coldGets(namespaces) {
    const ms = [];
    for (const ns of namespaces) {
      const t = performance.now();
      const v = await ctx.store.get(ns);
      ms.push(performance.now() - t);
      if (!v) throw new Error(`bridge lost ${ns}`);
    }
    return ms;
  },

  /** Subscribes to the bound bucket and records optimistic-event latency of stamped values. */
  listen() {
    ctx.store.subscribe(null, (value, meta) => {
      if (meta.kind === "optimistic" && value && typeof value.t0 === "number") {
        received.bridge.push(now() - value.t0);
      }
    }, noError);
  },
  received: () => received,

  /** Sets stamped values (awaiting each confirmation), `gapMs` apart. */
  async stampedSets(n, gapMs) {
    for (let i = 0; i < n; i++) {
      await ctx.store.set({ ...sampleValue(i), seq: i, t0: now() }, null);
      await sleep(gapMs);
    }
  },
  /** The raw floor: stamped postMessage to the parent, relayed to widget `to`. */
  async relaySends(n, gapMs, to) {
    for (let i = 0; i < n; i++) {
      window.parent.postMessage({ benchRelay: { to, payload: { t0: now() } } }, "*");
      await sleep(gapMs);
    }
  },

  /** Makes `namespaces` active in this widget: subscribe + get each (figure 3). */
  async watch(namespaces) {
    for (const ns of namespaces) {
      ctx.store.subscribe(ns, () => {}, noError);
      await ctx.store.get(ns);
    }
  },

  /** Makes the Blob to upload ahead of the timed part (its bytes are not upload cost). */
  prepareBlob(bytes) {
    // From 16 MiB chunks: one 1 GiB ArrayBuffer may not be allocatable.
    const chunk = new Uint8Array(Math.min(bytes, 16 << 20));
    const parts = [];
    for (let left = bytes; left > 0; left -= chunk.length) parts.push(left >= chunk.length ? chunk : chunk.subarray(0, left));
    window.benchBlob = new Blob(parts, { type: "application/octet-stream" });
  },
  /** Uploads the prepared Blob through ctx.assets; resolves with the elapsed ms. */
  async upload() {
    const t = performance.now();
    await ctx.assets.upload(window.benchBlob, { name: "bridge.bin" });
    return performance.now() - t;
  },

  /**
   * `n` optimistic sets into the bound bucket, all made at once without awaiting, as a widget
   * would write in a loop (the widget's port sends them as the host frees slots, and a write
   * frees its slot once queued). Resolves with the time until the last `optimistic` event
   * arrived and until every write was confirmed.
   */
  async bulkSets(n) {
    let seen = 0;
    let done;
    const allOptimistic = new Promise((r) => (done = r));
    const unsubscribe = ctx.store.subscribe(null, (value, meta) => {
      if (meta.kind === "optimistic" && value?.bulk === true && ++seen === n) done();
    }, noError);
    await sleep(100); // the subscription is registered before the first write
    const t = performance.now();
    const lanes = Promise.all(Array.from({ length: n }, (_, i) => ctx.store.set({ ...record(i), bulk: true }, null)));
    await allOptimistic;
    const optimisticMs = performance.now() - t;
    await lanes;
    const confirmedMs = performance.now() - t;
    unsubscribe();
    return { optimisticMs, confirmedMs };
  },
};
window.parent.postMessage({ benchReady: ctx.instanceId }, "*");
