// The bench host page: the trusted side. It creates the Host (host build of monodit-bridge)
// for the user in ?token=, mounts bench widgets in sandbox="allow-scripts" iframes the way
// www/js/dashboard.js does, and runs the in-page peers (Comlink server side, idb-keyval,
// Dexie, direct fetch upload). Playwright drives everything through `window.benchHost`.
import init, { Host } from "/pkg/host/monodit_bridge.js";
import * as Comlink from "/vendor/comlink.mjs";
import * as idbKeyval from "/vendor/idb-keyval.js";
import Dexie from "/vendor/dexie.mjs";
import { manifest, sampleValue, record } from "./manifest.js";

const token = new URLSearchParams(location.search).get("token");
const frames = document.getElementById("frames");

/** instanceId → resolve() of its ready promise (widgets post {benchReady} after connect). */
const readyWaiters = new Map();
window.addEventListener("message", (ev) => {
  const d = ev.data;
  if (d && typeof d === "object" && typeof d.benchReady === "string") {
    readyWaiters.get(d.benchReady)?.();
  }
  // Raw postMessage relay A → host → B: the floor for optimistic propagation (figure 2).
  if (d && typeof d === "object" && d.benchRelay) {
    const target = document.querySelector(`iframe[name="${CSS.escape(d.benchRelay.to)}"]`);
    target?.contentWindow?.postMessage({ benchRelayed: d.benchRelay.payload }, "*");
  }
});

await init();
// `?backend=URL`: the API runs elsewhere (the Worker under Miniflare, figure 4's 1 GiB run);
// this page and the widgets are still served by the native server.
const backend = new URLSearchParams(location.search).get("backend") ?? location.origin;
const host = await Host.create({ backendUrl: backend, token });

/** `bytes` of zeros as a Blob built from 16 MiB chunks (one 1 GiB ArrayBuffer may not exist). */
function blobOf(bytes) {
  const chunk = new Uint8Array(Math.min(bytes, 16 << 20));
  const parts = [];
  for (let left = bytes; left > 0; left -= chunk.length) parts.push(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return new Blob(parts, { type: "application/octet-stream" });
}

function sandboxedFrame(name) {
  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.name = name;
  iframe.width = "120";
  iframe.height = "40";
  frames.append(iframe);
  return iframe;
}

/** Mounts `widgets` ([{instanceId, config}]) and resolves when each has connected. */
async function mount(widgets) {
  await Promise.all(
    widgets.map(async ({ instanceId, config = {} }) => {
      const iframe = sandboxedFrame(instanceId);
      const ready = new Promise((resolve) => readyWaiters.set(instanceId, resolve));
      await host.mount(iframe, { instanceId, kind: "widget", manifest, config });
      iframe.src = "/bench/widget.html";
      await ready;
    }),
  );
  return widgets.map((w) => w.instanceId);
}

/** Comlink peer: a sandboxed iframe gets one end of a MessageChannel; the page exposes get(). */
async function comlinkFrame(name) {
  const store = new Map([["doc", sampleValue(0)]]);
  // get: the in-memory RPC floor; idbGet: the same design as the bridge's cold read
  // (port + IndexedDB in the host page), built from Comlink + idb-keyval.
  const api = { get: (key) => store.get(key), idbGet: (key) => idbKeyval.get(key) };
  const iframe = sandboxedFrame(name);
  const ready = new Promise((resolve) => readyWaiters.set(name, resolve));
  iframe.addEventListener("load", () => {
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(api, port1);
    iframe.contentWindow.postMessage({ comlinkPort: true }, "*", [port2]);
  }, { once: true });
  iframe.src = "/bench/comlink-widget.html";
  await ready;
  return name;
}

const dexieDb = () => {
  const db = new Dexie("bench-dexie");
  db.version(1).stores({ records: "id" });
  return db;
};

window.benchHost = {
  mount,
  comlinkFrame,
  sampleValue,

  /** Dispatches the browser event the engine re-checks on (page visible again). */
  visibilityRecheck() {
    document.dispatchEvent(new Event("visibilitychange"));
  },

  /** idb-keyval peer: writes the same values under `keys` (setup for cold gets). */
  async idbKeyvalSetup(keys) {
    await idbKeyval.setMany(keys.map((k, i) => [k, sampleValue(i)]));
  },
  /** idb-keyval peer: one timed get per key, in a page where nothing is cached. */
  async idbKeyvalGets(keys) {
    const ms = [];
    for (const k of keys) {
      const t = performance.now();
      const v = await idbKeyval.get(k);
      ms.push(performance.now() - t);
      if (!v) throw new Error(`idb-keyval lost ${k}`);
    }
    return ms;
  },

  /** Dexie peer: bulkPut of the 1,000 records (one transaction), and 1,000 single puts. */
  async dexieWrites(n, rounds) {
    const db = dexieDb();
    await db.open();
    const records = Array.from({ length: n }, (_, i) => record(i));
    const bulk = [];
    const single = [];
    for (let r = 0; r < rounds; r++) {
      await db.records.clear();
      let t = performance.now();
      await db.records.bulkPut(records);
      bulk.push(performance.now() - t);
      await db.records.clear();
      t = performance.now();
      await Promise.all(records.map((rec) => db.records.put(rec)));
      single.push(performance.now() - t);
    }
    db.close();
    return { bulk, single };
  },

  /** Direct upload peer: the same bytes POSTed by fetch() from the host page. */
  prepareBlob(bytes) {
    window.benchBlob = blobOf(bytes);
  },
  async directUpload(bucketId) {
    const blob = window.benchBlob;
    const url = `/v1/assets/${encodeURIComponent(bucketId)}?name=direct.bin&schemaId=bench.files&schemaVersion=1`;
    const t = performance.now();
    const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: blob });
    const ms = performance.now() - t;
    if (!res.ok) throw new Error(`direct upload: HTTP ${res.status} ${await res.text()}`);
    return ms;
  },

  /** Per-key peer (SWR / TanStack Query): one meta GET per bucket, all at once. */
  async perKeyMeta(bucketIds) {
    await Promise.all(
      bucketIds.map(async (id) => {
        const res = await fetch(`/v1/documents/${encodeURIComponent(id)}/meta`, {
          headers: { authorization: `Bearer ${token}` },
        });
        await res.arrayBuffer();
      }),
    );
  },
};
window.benchHostReady = true;
