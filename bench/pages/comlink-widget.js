// Comlink peer widget: the RPC floor. It receives a MessagePort from its parent and calls
// the page's get() through Comlink, exactly as the bridge widget calls ctx.store.get().
import * as Comlink from "/vendor/comlink.mjs";

window.addEventListener("message", (ev) => {
  if (ev.source !== window.parent || !ev.data?.comlinkPort || !ev.ports[0]) return;
  const remote = Comlink.wrap(ev.ports[0]);
  // The same first read as the bridge widget's: this frame's own key, from IndexedDB.
  const firstGet = (async () => {
    const t = performance.now();
    const v = await remote.idbGet(window.name);
    return v ? performance.now() - t : null;
  })();
  window.bench = {
    firstGetMs: () => firstGet,
    async gets(n) {
      await remote.get("doc");
      const ms = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await remote.get("doc");
        ms.push(performance.now() - t);
      }
      return ms;
    },
    async coldGets(keys) {
      const ms = [];
      for (const k of keys) {
        const t = performance.now();
        const v = await remote.idbGet(k);
        ms.push(performance.now() - t);
        if (!v) throw new Error(`Comlink + idb-keyval lost ${k}`);
      }
      return ms;
    },
  };
  window.parent.postMessage({ benchReady: window.name }, "*");
});
