// Todo: the whole list is one small d1-json document `{ items: [{id, text, done}] }`
// (schema todo.list v1). Every change is a `ctx.store.update` of the list as the server has
// it: when another device added an item first (CONFLICT), the change is applied again on top
// of that list instead of replacing it, so two devices adding at once keep both items.
// Offline the change shows at once and is sent later. The subscription re-renders.
// The half-typed new task is browser-only UI state: it lives in ctx.cache (per instance,
// never sent to the server, not counted in quota) and survives a reload.
import { start, explain, status, onAction } from "../shared/bridge.js";

const input = document.getElementById("new");
const addButton = document.getElementById("add-button");
const list = document.getElementById("list");
const left = document.getElementById("left");
const kindBadge = document.getElementById("kind");
const statusEl = document.getElementById("status");

let items = [];

let ctx;
try {
  ctx = await start();
} catch (err) {
  status(statusEl, explain(err), "error");
  throw err;
}

function render(value) {
  items = Array.isArray(value?.items) ? value.items : [];
  list.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !!item.done;
      box.id = `t-${item.id}`;
      box.addEventListener("change", () => {
        const done = box.checked;
        change((list) => list.map((i) => (i.id === item.id ? { ...i, done } : i)));
      });
      const label = document.createElement("label");
      label.htmlFor = box.id;
      label.style.cssText = "margin:0;font-weight:400;flex:1";
      label.textContent = item.text;
      if (item.done) label.style.textDecoration = "line-through";
      const del = document.createElement("button");
      del.type = "button";
      del.className = "secondary";
      del.textContent = "Remove";
      del.setAttribute("aria-label", `Remove ${item.text}`);
      del.addEventListener("click", () => change((list) => list.filter((i) => i.id !== item.id)));
      li.append(box, label, del);
      return li;
    }),
  );
  left.textContent = `${items.filter((i) => !i.done).length} open`;
}

/** Applies `edit` to the current list (re-run on the server's list after a conflict). */
async function change(edit) {
  try {
    await ctx.store.update((current) => ({
      items: edit(Array.isArray(current?.items) ? current.items : []),
      updatedAt: Date.now(),
    }));
    status(statusEl, "");
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}

onAction(addButton, [input], () => {
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  ctx.cache.delete("draft").catch(() => {});
  const item = { id: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`, text, done: false };
  change((list) => [...list, item]);
});

ctx.store.subscribe(null, (value, meta) => {
  if (meta?.kind) kindBadge.textContent = meta.kind;
  render(value);
});
ctx.onConfigChange(async () => render(await ctx.store.get()));

// data-cached says the current draft is in the cache (tests wait for it before reloading).
input.addEventListener("input", async () => {
  const value = input.value;
  input.dataset.cached = "false";
  try {
    await ctx.cache.set("draft", value, { ttlMs: 7 * 24 * 3600 * 1000 });
    if (input.value === value) input.dataset.cached = "true";
  } catch {
    // Not cached: nothing to restore after a reload, which is all this costs.
  }
});

try {
  const draft = await ctx.cache.get("draft");
  if (typeof draft === "string" && !input.value) input.value = draft;
} catch {
  // The cache is a convenience: without it the field just starts empty.
}

try {
  render(await ctx.store.get());
  if (kindBadge.textContent === "connecting") kindBadge.textContent = "loaded";
  input.disabled = false;
  addButton.disabled = false;
} catch (err) {
  status(statusEl, explain(err), "error");
}
