// The monodit demo dashboard: the trusted host page. It owns the user's token, creates the
// Host from the host build of monodit-bridge, mounts every widget in its own
// sandbox="allow-scripts" iframe with its manifest, instance id and config, and shows the
// Storage Topology panel, the event log, the plan switch and a form to mount any widget URL.
import init, { Host } from "/pkg/host/monodit_bridge.js";
import { createApi, ApiError } from "./api.js";
import { loadLayout, saveLayout, resetLayout } from "./layout.js";
import { createEventLog } from "./events.js";
import { renderTopology, bindingsOf, configKeyFor, resolveBucket, defaultBucketFor } from "./topology.js";

const TOKEN_KEY = "monodit-demo:token";
const ACCENT_KEY = "monodit-demo:accent";
const $ = (id) => document.getElementById(id);

// The backend: this page's own origin (the native server serves both), or `?backend=URL`
// when the API runs elsewhere (`scripts/demo.sh --worker`: the Worker under Miniflare).
const BACKEND = new URLSearchParams(location.search).get("backend") ?? location.origin;
const api = createApi(BACKEND, () => localStorage.getItem(TOKEN_KEY));
const layout = loadLayout();
/** instanceId → {entry, manifest, handle, card, iframe} */
const mounted = new Map();
let host = null;
let me = null;

const titleOf = (instanceId) => mounted.get(instanceId)?.entry.title ?? instanceId;
const eventLog = createEventLog($("event-list"), titleOf);

function showBootError(text) {
  const box = $("boot-error");
  box.textContent = text;
  box.hidden = !text;
}

function errorText(err) {
  const code = err?.code ?? err?.message ?? String(err);
  const detail = err?.detail;
  if (!detail) return code;
  return `${code}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`;
}

// ---------------------------------------------------------------- account and plan

/** Returns a working token: ?token= (another device of the same user), saved, or a new user. */
async function ensureUser() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    params.delete("token");
    history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}`);
  }
  if (localStorage.getItem(TOKEN_KEY)) {
    try {
      me = await api.me();
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "UNAUTHENTICATED") throw err;
      // The demo database was reset: start over with a new user and a fresh layout.
      resetLayout();
      layout.splice(0, layout.length, ...loadLayout());
    }
  }
  const user = await api.createUser("pro");
  localStorage.setItem(TOKEN_KEY, user.token);
  me = await api.me();
}

function renderAccount() {
  $("user-id").textContent = me.userId;
  $("plan").value = me.plan;
  $("addons").value = me.addons ?? 0;
  $("addons").disabled = me.plan !== "pro";
  const link = new URL(location.href);
  link.search = `?token=${encodeURIComponent(localStorage.getItem(TOKEN_KEY))}`;
  $("device-link").href = link.href;
  const banner = $("plan-banner");
  if (me.plan === "free") {
    banner.innerHTML =
      "<strong>Free plan: storage is gated off.</strong> Widgets get <code>PLAN_REQUIRED</code> from " +
      "<code>ctx.store</code>, <code>ctx.assets</code> and <code>ctx.storage</code>. Choose Pro above to store data.";
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

$("plan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const plan = $("plan").value;
  const addons = plan === "pro" ? Math.max(0, Number($("addons").value) || 0) : 0;
  try {
    me = await api.setPlan(plan, addons);
    renderAccount();
    // Widgets that failed with PLAN_REQUIRED retry from scratch in a fresh document.
    for (const m of mounted.values()) reloadWidget(m);
    refreshTopology();
  } catch (err) {
    showBootError(`Could not change the plan: ${errorText(err)}`);
  }
});

$("reset").addEventListener("click", () => {
  if (!confirm("Start over with a new demo user? The current user's data stays on the server.")) return;
  localStorage.removeItem(TOKEN_KEY);
  resetLayout();
  location.reload();
});

// ---------------------------------------------------------------- widgets

async function manifestOf(entry) {
  if (entry.manifest) return entry.manifest;
  const res = await fetch(entry.manifestUrl);
  if (!res.ok) throw new Error(`manifest ${entry.manifestUrl}: HTTP ${res.status}`);
  return res.json();
}

/** How many mounted widget bindings (themes excluded) use this bucket. */
function usersOf(backend, bucketId) {
  let n = 0;
  for (const other of mounted.values()) {
    if (!other.manifest || other.entry.kind === "theme") continue;
    for (const b of bindingsOf(other.manifest)) {
      if (b.backend === backend && resolveBucket(other.manifest, b, other.entry.instanceId, other.entry.config) === bucketId) n++;
    }
  }
  return n;
}

function bucketBadges(m) {
  const box = m.card.querySelector(".buckets");
  box.replaceChildren();
  for (const binding of bindingsOf(m.manifest)) {
    const bucket = resolveBucket(m.manifest, binding, m.entry.instanceId, m.entry.config);
    // "Isolated" = still on its own default bucket, not sharing it with anyone.
    const isolated =
      bucket === defaultBucketFor(m.manifest, binding, m.entry.instanceId) &&
      (m.entry.kind === "theme" || usersOf(binding.backend, bucket) <= 1);
    const badge = document.createElement("span");
    badge.className = `badge ${isolated ? "isolated" : "shared"}`;
    badge.dataset.binding = binding.key;
    badge.textContent = `${binding.key} → ${bucket}${isolated ? " (Isolated)" : ""}`;
    box.append(badge);
  }
  const collections = Object.keys(m.manifest.storage ?? {}).filter((k) => k !== "bindings");
  if (collections.length) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = `collections: ${collections.join(", ")}`;
    box.append(badge);
  }
  box.hidden = !box.children.length;
}

function createCard(entry) {
  const card = document.createElement("article");
  card.className = "card";
  card.dataset.instance = entry.instanceId;
  const head = document.createElement("header");
  const h = document.createElement("h2");
  h.textContent = entry.title;
  const id = document.createElement("span");
  id.className = "muted";
  id.textContent = entry.kind === "theme" ? `theme · ${entry.instanceId}` : entry.instanceId;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "link";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${entry.title} from the dashboard`);
  remove.addEventListener("click", () => unmountWidget(entry.instanceId));
  head.append(h, id, remove);
  const iframe = document.createElement("iframe");
  // Opaque origin: the widget cannot touch this page, its storage or other widgets.
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.title = `${entry.title} widget`;
  iframe.name = entry.instanceId;
  iframe.style.height = `${entry.height ?? 260}px`;
  const buckets = document.createElement("div");
  buckets.className = "buckets";
  buckets.setAttribute("aria-label", "Buckets of this widget");
  card.append(head, iframe, buckets);
  (entry.kind === "theme" ? $("themes") : $("widgets")).append(card);
  return { card, iframe };
}

async function mountWidget(entry) {
  const { card, iframe } = createCard(entry);
  const m = { entry, card, iframe, manifest: null, handle: null };
  mounted.set(entry.instanceId, m);
  try {
    m.manifest = await manifestOf(entry);
    m.handle = await host.mount(iframe, {
      instanceId: entry.instanceId,
      kind: entry.kind ?? "widget",
      manifest: m.manifest,
      config: entry.config ?? {},
    });
    bucketBadges(m);
    // The source is set after mount so the host sees the first `load` of the widget document.
    iframe.src = entry.src;
  } catch (err) {
    const p = document.createElement("p");
    p.className = "card-error";
    p.setAttribute("role", "alert");
    p.textContent = `Could not mount: ${errorText(err)}`;
    iframe.replaceWith(p);
    throw err;
  }
  return m;
}

function reloadWidget(m) {
  if (m.handle && m.iframe.isConnected) m.iframe.src = m.entry.src;
}

/**
 * Takes a widget off the dashboard for good: `host.removeInstance` unmounts it and deletes its
 * registration, so it leaves the topology and its manifest's indexes stop counting (its
 * buckets stay). A widget that never registered (refused manifest) answers NOT_FOUND.
 */
async function unmountWidget(instanceId) {
  const m = mounted.get(instanceId);
  if (!m) return;
  m.card.remove();
  mounted.delete(instanceId);
  const i = layout.findIndex((e) => e.instanceId === instanceId);
  if (i >= 0) layout.splice(i, 1);
  saveLayout(layout);
  try {
    await host.removeInstance(instanceId);
  } catch (err) {
    if (err?.message !== "NOT_FOUND") console.warn("removeInstance", err);
  }
  refreshTopology();
}

/** Records a widget's config (set through the host) so a reload mounts it the same way. */
function adoptConfig(m, config) {
  if (!config || typeof config !== "object") return;
  m.entry.config = { ...config };
  saveLayout(layout);
  // Sharing changes the badges of the other widgets on that bucket too.
  for (const other of mounted.values()) if (other.manifest) bucketBadges(other);
}

// ---------------------------------------------------------------- topology

/** Moves one binding of a mounted widget to `bucketId`, or back to its isolated bucket (null). */
async function moveBinding(instanceId, bindingKey, bucketId) {
  const m = mounted.get(instanceId);
  try {
    if (bucketId) {
      // The host checks compatibility again (INCOMPATIBLE_BUCKET) and re-binds the widget.
      adoptConfig(m, await host.relink(instanceId, bindingKey, bucketId));
    } else {
      const binding = bindingsOf(m.manifest).find((b) => b.key === bindingKey);
      const config = { ...m.entry.config };
      delete config[configKeyFor(m.manifest, binding)];
      // The first d1-json binding also honours storageNamespace: clear it to really go back.
      if (binding.backend === "d1-json") delete config.storageNamespace;
      await m.handle.setConfig(config);
      adoptConfig(m, config);
    }
  } catch (err) {
    alert(`Could not move ${m.entry.title}: ${errorText(err)}`);
  }
  refreshTopology();
}

async function deleteBucket(bucket, connected) {
  const dialog = $("confirm");
  const names = connected.map((c) => c.widget.title);
  $("confirm-text").textContent =
    `Delete the ${bucket.backend} bucket “${bucket.bucketId}” (${bucket.schemaId} v${bucket.schemaVersion})? ` +
    (bucket.backend === "r2-assets" ? "All its files are deleted and the quota is refunded. " : "Its document is deleted. ") +
    (names.length ? `${names.join(", ")} will fall back to ${names.length > 1 ? "their" : "its"} own isolated bucket.` : "No widget is connected.");
  // Escape keeps the previous returnValue, so reset it: only the Delete button confirms.
  dialog.returnValue = "";
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "ok") return;
  try {
    // The host deletes it on the backend, invalidates its local copy, and clears the config
    // keys of connected widgets so they fall back to their isolated buckets.
    await host.deleteBucket(bucket.backend, bucket.bucketId);
    for (const m of mounted.values()) if (m.handle) adoptConfig(m, m.handle.config);
  } catch (err) {
    alert(`Could not delete ${bucket.bucketId}: ${errorText(err)}`);
  }
  refreshTopology();
}

let topologyTimer = null;
let topologyRun = Promise.resolve();
/** Re-reads usage and buckets (debounced: host events arrive in bursts). */
function refreshTopology(delay = 0) {
  clearTimeout(topologyTimer);
  topologyTimer = setTimeout(() => {
    topologyRun = topologyRun.then(drawTopology, drawTopology);
  }, delay);
}

async function drawTopology() {
  let data;
  try {
    const topology = await host.topology();
    me = { ...me, ...topology.usage };
    data = { me, buckets: topology.buckets };
  } catch (err) {
    data = {
      me,
      error: err.code === "PLAN_REQUIRED" ? "Storage is gated off on the Free plan (PLAN_REQUIRED)." : `Could not load buckets: ${errorText(err)}`,
    };
  }
  const widgets = [...mounted.values()]
    .filter((m) => m.manifest)
    .map((m) => ({ instanceId: m.entry.instanceId, title: m.entry.title, kind: m.entry.kind, manifest: m.manifest, config: m.entry.config }));
  renderTopology($("quota"), $("topology-body"), data, widgets, { move: moveBinding, deleteBucket });
  $("topology").dataset.updated = String(Date.now());
}

$("topology-refresh").addEventListener("click", () => refreshTopology());
$("events-clear").addEventListener("click", () => eventLog.clear());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshTopology(300);
});

// ---------------------------------------------------------------- host events

function onHostEvent(event) {
  // Mount and handshake entries are plumbing; the log shows what happens to data.
  if (event.type !== "mount" && event.type !== "handshake") eventLog.add(event);
  const m = mounted.get(event.instanceId);
  if (event.type === "config" && m) adoptConfig(m, event.config);
  if (event.type === "store" && m?.entry.kind === "theme" && (event.kind === "confirmed" || event.kind === "revalidated")) {
    applyThemeFrom(event.bucket);
  }
  if (event.type === "store" || event.type === "assets" || event.type === "config") refreshTopology(400);
}

/**
 * A Dynamic Theme keeps its palette in its own document; the dashboard (trusted, holding the
 * token) reads the confirmed value and recolours itself. Only a plain #rrggbb is accepted.
 */
async function applyThemeFrom(bucketId) {
  try {
    const accent = (await api.document(bucketId))?.value?.accent;
    if (typeof accent !== "string" || !/^#[0-9a-f]{6}$/i.test(accent)) return;
    document.documentElement.style.setProperty("--accent", accent);
    localStorage.setItem(ACCENT_KEY, accent);
  } catch {
    // The theme's colours are decoration: keep the current ones.
  }
}

// ---------------------------------------------------------------- mount your own widget

$("mount-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const out = $("mount-error");
  out.textContent = "";
  const data = Object.fromEntries(new FormData(form));
  let manifest;
  let config;
  try {
    const text = data.manifest.trim();
    manifest = text.startsWith("{") ? JSON.parse(text) : await (await fetch(new URL(text, location.href))).json();
  } catch (err) {
    out.textContent = `The manifest is neither JSON nor a URL serving JSON: ${err.message}`;
    return;
  }
  try {
    config = JSON.parse(data.config || "{}");
  } catch (err) {
    out.textContent = `Config is not JSON: ${err.message}`;
    return;
  }
  const instanceId = data.instanceId.trim() || `custom-${Date.now().toString(36)}`;
  if (mounted.has(instanceId)) {
    out.textContent = `Instance id ${instanceId} is already mounted.`;
    return;
  }
  const entry = {
    instanceId,
    title: data.title.trim() || manifest.name || manifest.id || instanceId,
    kind: data.kind,
    src: new URL(data.src.trim(), location.href).href,
    manifest,
    config,
    height: 360,
  };
  // The manifest id names the plugin whose collections the widget reaches, and the
  // backend keeps one declaration per id: a page from another URL claiming an id already in
  // use would read that widget's collections and replace its indexes. Refuse it here.
  const claimed = manifest.id ?? manifest.slug;
  const page = (src) => { const u = new URL(src, location.href); return u.origin + u.pathname; };
  // An id-less manifest (allowed without collections) claims nothing.
  const owner = claimed !== undefined && [...mounted.values()].find(
    (m) => m.manifest && (m.manifest.id ?? m.manifest.slug) === claimed && page(m.entry.src) !== page(entry.src),
  );
  if (owner) {
    out.textContent =
      `Manifest id "${claimed}" already belongs to ${owner.entry.title} (${page(owner.entry.src)}). ` +
      "A widget from another URL cannot use it: it would share that widget's collections. Choose another id.";
    return;
  }
  try {
    await mountWidget(entry);
  } catch (err) {
    mounted.get(instanceId)?.card.remove();
    mounted.delete(instanceId);
    // INVALID_MANIFEST lists every problem (with its JSON path) in err.data.
    const problems = Array.isArray(err?.data) ? err.data : Array.isArray(err?.detail?.problems) ? err.detail.problems : null;
    out.textContent = problems
      ? `${err.code ?? err.message}:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`
      : `Could not mount: ${errorText(err)}`;
    return;
  }
  layout.push(entry);
  saveLayout(layout);
  form.reset();
  refreshTopology();
});

// ---------------------------------------------------------------- start

async function main() {
  const accent = localStorage.getItem(ACCENT_KEY);
  if (accent && /^#[0-9a-f]{6}$/i.test(accent)) document.documentElement.style.setProperty("--accent", accent);
  await ensureUser();
  renderAccount();
  await init();
  host = await Host.create({ backendUrl: BACKEND, token: localStorage.getItem(TOKEN_KEY) });
  host.onEvent?.(onHostEvent);

  // Another device of the same user may have re-linked widgets: the server's registration is
  // the shared truth for instance config.
  try {
    const known = new Map((await api.instances()).map((i) => [i.instanceId, i]));
    for (const entry of layout) {
      const info = known.get(entry.instanceId);
      if (info?.config && typeof info.config === "object") entry.config = info.config;
    }
  } catch {
    // Free plan or an older server: keep the local layout.
  }
  saveLayout(layout);

  const results = await Promise.allSettled(layout.map((entry) => mountWidget(entry)));
  for (const m of mounted.values()) if (m.manifest) bucketBadges(m);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length) console.warn("some widgets failed to mount", failed.map((r) => r.reason));
  await drawTopology();
  document.body.dataset.ready = "true";
}

window.monoditDemo = { api, layout, mounted, get host() { return host; }, refreshTopology };
main().catch((err) => {
  console.error(err);
  showBootError(`The dashboard could not start: ${errorText(err)}. Is monodit-server running with --dev?`);
});
