// The Storage Topology panel: every bucket with its backend, schema, connected
// widgets and usage against the user's quota; an "Isolated" badge for widgets still on their
// own default bucket; moving a widget binding to another *compatible* bucket (same backend,
// schemaId and schemaVersion: incompatible buckets are never offered); deleting a bucket
// after a confirmation. Themes use the bridge too but are not shown as widgets.
import { formatBytes } from "./api.js";

/** Bindings of a manifest (empty for basic widgets). */
export function bindingsOf(manifest) {
  return Array.isArray(manifest?.storage?.bindings) ? manifest.storage.bindings : [];
}

function positionInBackend(manifest, binding) {
  return bindingsOf(manifest)
    .filter((b) => b.backend === binding.backend)
    .findIndex((b) => b.key === binding.key);
}

/** The config field that selects a binding's bucket (same rule as crates/core buckets::config_key). */
export function configKeyFor(manifest, binding) {
  if (binding.configKey) return binding.configKey;
  if (binding.backend === "d1-json" && positionInBackend(manifest, binding) === 0) return "storageNamespace";
  return `bucket:${binding.key}`;
}

/** The isolated default bucket: instanceId for the first binding of a backend, else instanceId:key. */
export function defaultBucketFor(manifest, binding, instanceId) {
  return positionInBackend(manifest, binding) === 0 ? instanceId : `${instanceId}:${binding.key}`;
}

/** The bucket a binding resolves to with this config (as crates/core/src/buckets.rs does). */
export function resolveBucket(manifest, binding, instanceId, config) {
  const fromKey = config?.[configKeyFor(manifest, binding)];
  if (typeof fromKey === "string" && fromKey) return fromKey;
  if (binding.backend === "d1-json" && positionInBackend(manifest, binding) === 0) {
    const ns = config?.storageNamespace;
    if (typeof ns === "string" && ns) return ns;
  }
  return defaultBucketFor(manifest, binding, instanceId);
}

const sameContract = (bucket, binding) =>
  bucket.backend === binding.backend &&
  bucket.schemaId === binding.schemaId &&
  Number(bucket.schemaVersion) === Number(binding.schemaVersion);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

function bar(fraction, label) {
  const outer = el("div", { className: "bar", role: "meter", "aria-label": label });
  outer.setAttribute("aria-valuemin", "0");
  outer.setAttribute("aria-valuemax", "100");
  outer.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  const inner = el("span");
  inner.style.width = `${Math.min(100, Math.max(0, fraction * 100))}%`;
  outer.append(inner);
  return outer;
}

/**
 * Renders the panel.
 * - `data`: `{me, buckets}` from the backend (`buckets` may be null with `error`).
 * - `widgets`: `[{instanceId, title, kind, manifest, config}]` mounted on this dashboard.
 * - `actions`: `{move(instanceId, bindingKey, bucketId | null), deleteBucket(bucket, connected)}`.
 */
export function renderTopology(quotaEl, bodyEl, data, widgets, actions) {
  const { me, buckets, error } = data;
  quotaEl.replaceChildren();
  if (me) {
    const used = Number(me.usedBytes ?? 0);
    const limit = Number(me.limitBytes ?? 0);
    const plan = me.plan === "pro" ? `Pro${me.addons ? ` + ${me.addons} add-on${me.addons > 1 ? "s" : ""}` : ""}` : "Free";
    quotaEl.append(
      el(
        "div",
        { className: "row" },
        el("strong", {}, "Quota "),
        `${formatBytes(used)} of ${formatBytes(limit)} used · ${plan}`,
        me.collectionBytes ? el("span", { className: "muted" }, ` (collections ${formatBytes(me.collectionBytes)})`) : null,
      ),
      bar(limit ? used / limit : 0, "Storage quota used"),
    );
  }
  bodyEl.replaceChildren();
  if (error) {
    bodyEl.append(el("p", { className: "form-error" }, error));
    return;
  }

  // Which mounted widget binding sits in which bucket, computed from the config we mount with.
  const connections = [];
  for (const w of widgets) {
    if (w.kind === "theme") continue;
    for (const binding of bindingsOf(w.manifest)) {
      const bucketId = resolveBucket(w.manifest, binding, w.instanceId, w.config);
      connections.push({ widget: w, binding, bucketId, isDefault: bucketId === defaultBucketFor(w.manifest, binding, w.instanceId) });
    }
  }
  const inBucket = (b) => connections.filter((c) => c.binding.backend === b.backend && c.bucketId === b.bucketId);

  // A select plus a Move button, not a select that acts on change: with the keyboard,
  // arrowing through a closed select fires change for every option passed.
  function moveSelect(c) {
    const label = `Move ${c.widget.title} (${c.binding.key}) to another bucket`;
    const select = el("select", { "aria-label": label, title: label });
    select.append(el("option", { value: "" }, "Move to…"));
    for (const b of buckets) {
      if (b.bucketId === c.bucketId || !sameContract(b, c.binding)) continue;
      select.append(el("option", { value: `bucket:${b.bucketId}` }, b.bucketId));
    }
    if (!c.isDefault) select.append(el("option", { value: "isolated" }, "its own isolated bucket"));
    select.append(el("option", { value: "new" }, "a new bucket…"));
    const button = el("button", { type: "button", className: "secondary small" }, "Move");
    button.setAttribute("aria-label", `Move ${c.widget.title} (${c.binding.key})`);
    button.addEventListener("click", () => {
      const v = select.value;
      if (v === "isolated") actions.move(c.widget.instanceId, c.binding.key, null);
      else if (v === "new") {
        const name = prompt("Name of the new bucket (letters, digits, . _ - :)", `${c.binding.schemaId}-shared`);
        if (name) actions.move(c.widget.instanceId, c.binding.key, name.trim());
      } else if (v) actions.move(c.widget.instanceId, c.binding.key, v.slice("bucket:".length));
      else select.focus();
    });
    const group = el("span", { className: "move" }, select, button);
    return group;
  }

  function connectionRow(c, shared) {
    return el(
      "li",
      { dataset: { instance: c.widget.instanceId, binding: c.binding.key } },
      el("span", { className: "who" }, c.widget.title, " ", el("span", { className: "muted" }, `· ${c.binding.key}`)),
      c.isDefault && !shared ? el("span", { className: "badge isolated" }, "Isolated") : null,
      moveSelect(c),
    );
  }

  const used = Number(me?.usedBytes ?? 0);
  const share = (bytes) => `${used ? Math.round((Number(bytes) / used) * 100) : 0}%`;
  const list = el("div", { className: "bucket-list" });
  const sorted = [...buckets].sort((a, b) => a.backend.localeCompare(b.backend) || a.bucketId.localeCompare(b.bucketId));
  for (const b of sorted) {
    const here = inBucket(b);
    const shared = here.length > 1;
    const elsewhere = (b.instances ?? []).filter((i) => !here.some((c) => c.widget.instanceId === i.instanceId));
    const del = el("button", { type: "button", className: "secondary small" }, "Delete…");
    del.setAttribute("aria-label", `Delete bucket ${b.bucketId}`);
    del.addEventListener("click", () => actions.deleteBucket(b, here));
    list.append(
      el(
        "article",
        { className: "bucket", dataset: { bucket: b.bucketId, backend: b.backend } },
        el(
          "div",
          { className: "bucket-head" },
          el("span", { className: "name" }, b.bucketId),
          el("span", { className: `badge backend-${b.backend}` }, b.backend),
          shared ? el("span", { className: "badge shared" }, `Shared ×${here.length}`) : null,
          del,
        ),
        el("div", { className: "muted" }, `schema ${b.schemaId} v${b.schemaVersion}`),
        el(
          "div",
          { className: "usage", title: `${formatBytes(b.bytes)}: ${share(b.bytes)} of the storage this user uses` },
          // The bar shows the bucket's share of what the user stores (against a 5 GB limit
          // every demo bucket would be an invisible sliver); the quota bar above shows the limit.
          bar(used ? Number(b.bytes) / used : 0, `Share of used storage in ${b.bucketId}`),
          el("span", { className: "muted" }, `${formatBytes(b.bytes)} · ${share(b.bytes)}`),
        ),
        here.length || elsewhere.length
          ? el(
              "ul",
              { "aria-label": `Widgets connected to ${b.bucketId}` },
              ...here.map((c) => connectionRow(c, shared)),
              ...elsewhere.map((i) =>
                el("li", {}, el("span", { className: "who muted" }, `${i.instanceId} · ${i.bindingKey} (not on this dashboard)`)),
              ),
            )
          : el("div", { className: "muted" }, "No widgets connected (a theme or an explicit namespace may use it)."),
      ),
    );
  }
  bodyEl.append(el("h3", {}, `Buckets (${buckets.length})`), list);
  if (!buckets.length) bodyEl.append(el("p", { className: "muted" }, "No bucket holds data yet. Write in a widget to create one."));

  const empty = connections.filter((c) => !buckets.some((b) => b.backend === c.binding.backend && b.bucketId === c.bucketId));
  if (empty.length) {
    bodyEl.append(
      el("h3", {}, "Not stored yet"),
      el(
        "div",
        { className: "bucket", dataset: { section: "unstored" } },
        el("div", { className: "muted topology-note" }, "These bindings point at buckets that do not exist until the widget writes."),
        el(
          "ul",
          { "aria-label": "Bindings with no stored data yet" },
          ...empty.map((c) =>
            el(
              "li",
              { dataset: { instance: c.widget.instanceId, binding: c.binding.key } },
              el(
                "span",
                { className: "who" },
                c.widget.title,
                " ",
                el("span", { className: "muted" }, `· ${c.binding.key} → ${c.bucketId} (${c.binding.backend})`),
              ),
              c.isDefault ? el("span", { className: "badge isolated" }, "Isolated") : null,
              moveSelect(c),
            ),
          ),
        ),
      ),
    );
  }
}
