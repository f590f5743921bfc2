// Notes: one d1-json document `{ text, updatedAt }` (schema notes.plaintext v1), written with
// the text-editor pattern: a remote update never overwrites a draft the user is still
// typing; it waits in `pendingRemote` until the draft is saved or the field loses focus.
import { start, explain, status } from "../shared/bridge.js";

const textarea = document.getElementById("note");
const updated = document.getElementById("updated");
const kindBadge = document.getElementById("kind");
const statusEl = document.getElementById("status");
// How long typing pauses before a save (?saveDelayMs= in the widget URL changes it).
const SAVE_DELAY_MS = Number(new URLSearchParams(location.search).get("saveDelayMs")) || 300;

let pendingRemote = null;
let draftVersion = 0;
let lastSavedVersion = 0;

function hasDirtyDraft() {
  return draftVersion !== lastSavedVersion;
}

function renderDocument(value) {
  const text = value?.text ?? "";
  // Assigning an identical value would still reset the caret in some browsers.
  if (textarea.value !== text) textarea.value = text;
  updated.textContent = value?.updatedAt ? new Date(value.updatedAt).toLocaleTimeString() : "never";
}

let ctx;
try {
  ctx = await start();
} catch (err) {
  status(statusEl, explain(err), "error");
  throw err;
}

ctx.store.subscribe(null, (value, meta) => {
  if (meta?.kind) kindBadge.textContent = meta.kind;
  if (document.activeElement === textarea && hasDirtyDraft()) {
    pendingRemote = value;
    return;
  }
  // A newer value supersedes whatever was held back while typing.
  pendingRemote = null;
  renderDocument(value);
});

// Saves are debounced while typing; each save records which draft it carried, so a
// confirmation of an older draft does not mark a newer one as saved.
let timer = null;
async function save() {
  clearTimeout(timer);
  timer = null;
  const version = draftVersion;
  try {
    await ctx.store.set({ text: textarea.value, updatedAt: Date.now() });
    if (version > lastSavedVersion) lastSavedVersion = version;
    status(statusEl, "Saved", "ok");
  } catch (err) {
    status(statusEl, explain(err), "error");
    // The host rolled the document back to the last confirmed value: show it.
    lastSavedVersion = draftVersion;
  }
  flushPendingRemote();
}

function flushPendingRemote() {
  if (pendingRemote !== null && !hasDirtyDraft()) {
    const value = pendingRemote;
    pendingRemote = null;
    renderDocument(value);
  }
}

textarea.addEventListener("input", () => {
  draftVersion++;
  clearTimeout(timer);
  timer = setTimeout(save, SAVE_DELAY_MS);
});
textarea.addEventListener("blur", () => {
  if (timer) save();
  else flushPendingRemote();
});

ctx.onConfigChange(() => {
  // The host re-bound the document bucket (topology re-link): show the new bucket's value.
  pendingRemote = null;
  lastSavedVersion = draftVersion;
  load();
});

async function load() {
  try {
    renderDocument(await ctx.store.get());
    if (kindBadge.textContent === "connecting") kindBadge.textContent = "loaded";
    textarea.disabled = false;
    status(statusEl, "");
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}
await load();
