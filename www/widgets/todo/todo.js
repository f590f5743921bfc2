// Todo: the whole list is one small d1-json document `{ items: [{id, text, done}] }`
// (schema todo.list v1). Every change writes the full list; the subscription re-renders it.
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
      box.addEventListener("change", () =>
        write(items.map((i) => (i.id === item.id ? { ...i, done: box.checked } : i))),
      );
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
      del.addEventListener("click", () => write(items.filter((i) => i.id !== item.id)));
      li.append(box, label, del);
      return li;
    }),
  );
  left.textContent = `${items.filter((i) => !i.done).length} open`;
}

async function write(next) {
  try {
    await ctx.store.set({ items: next, updatedAt: Date.now() });
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
  write([...items, { id: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`, text, done: false }]);
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
