// Mixed: structured settings in a d1-json bucket (gallery.settings v1,
// binding "content") and files in an r2-assets bucket (gallery.assets v1, binding "assets",
// configKey assetBucketId). Its asset binding is compatible with the Gallery's, so the two
// can share one image bucket through the topology panel.
import { start, explain, status, onAction } from "../shared/bridge.js";
import { renderAssets } from "../shared/assets-view.js";

const titleInput = document.getElementById("title");
const saveButton = document.getElementById("save");
const heading = document.getElementById("heading");
const input = document.getElementById("file");
const progress = document.getElementById("progress");
const statusEl = document.getElementById("status");
const grid = document.getElementById("grid");
const empty = document.getElementById("empty");

let ctx;
try {
  ctx = await start();
} catch (err) {
  status(statusEl, explain(err), "error");
  throw err;
}

function renderSettings(value) {
  const title = value?.title || "Untitled gallery";
  heading.textContent = title;
  if (document.activeElement !== titleInput) titleInput.value = value?.title ?? "";
}

onAction(saveButton, [titleInput], async () => {
  try {
    await ctx.store.set({ title: titleInput.value.trim(), updatedAt: Date.now() });
    status(statusEl, "Settings saved", "ok");
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
});

async function loadAssets() {
  try {
    renderAssets(grid, empty, await ctx.assets.list(), remove);
    input.disabled = false;
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}

async function remove(asset) {
  try {
    await ctx.assets.delete(asset.objectKey);
    await loadAssets();
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}

input.addEventListener("change", async () => {
  const files = [...input.files];
  input.value = "";
  for (const file of files) {
    progress.hidden = false;
    progress.value = 0;
    try {
      await ctx.assets.upload(file, {
        onProgress: (loaded, total) => {
          progress.value = total ? loaded / total : 0;
        },
      });
      status(statusEl, `Uploaded ${file.name}`, "ok");
    } catch (err) {
      progress.hidden = true;
      if (err.message === "QUOTA_EXCEEDED") {
        status(statusEl, "Storage quota exceeded.", "error");
      } else {
        status(statusEl, explain(err), "error");
      }
    }
  }
  await loadAssets();
});

ctx.store.subscribe(null, renderSettings);

let unsubscribe = null;
function bindBucket() {
  if (unsubscribe) unsubscribe();
  unsubscribe = ctx.assets.subscribe(loadAssets);
}
ctx.onConfigChange(async () => {
  bindBucket();
  loadAssets();
  try {
    renderSettings(await ctx.store.get());
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
});

bindBucket();
try {
  renderSettings(await ctx.store.get());
  titleInput.disabled = false;
  saveButton.disabled = false;
} catch (err) {
  status(statusEl, explain(err), "error");
}
await loadAssets();
