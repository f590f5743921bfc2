// Gallery: an r2-assets bucket (gallery.assets v1, configKey assetBucketId). ctx.assets.list()
// is the source of truth; the widget re-lists whenever the bucket changes and re-binds when
// the host moves it to another bucket.
import { start, explain, status } from "../shared/bridge.js";
import { renderAssets } from "../shared/assets-view.js";

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

async function loadAssets() {
  try {
    const assets = await ctx.assets.list();
    renderAssets(grid, empty, assets, remove);
    input.disabled = false;
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}

async function remove(asset) {
  try {
    await ctx.assets.delete(asset.objectKey);
    status(statusEl, `Deleted ${asset.name}`, "ok");
    await loadAssets();
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
}

async function upload(file) {
  progress.hidden = false;
  progress.value = 0;
  delete statusEl.dataset.errorCode;
  status(statusEl, `Uploading ${file.name}…`);
  try {
    await ctx.assets.upload(file, {
      onProgress: (loaded, total) => {
        progress.value = total ? loaded / total : 0;
      },
    });
    progress.value = 1;
    status(statusEl, `Uploaded ${file.name}`, "ok");
  } catch (err) {
    // Nothing was stored: a full bar would say otherwise.
    progress.hidden = true;
    statusEl.dataset.errorCode = err.message;
    if (err.message === "QUOTA_EXCEEDED") {
      status(statusEl, "Storage quota exceeded.", "error");
    } else if (err.message === "FILE_UNREADABLE") {
      // The browser cannot read the file any more (deleted or changed on disk since it was
      // picked): retrying will not help, picking it again will.
      status(statusEl, `Could not read ${file.name}: pick the file again.`, "error");
    } else {
      status(statusEl, explain(err), "error");
    }
  }
}

input.addEventListener("change", async () => {
  const files = [...input.files];
  input.value = "";
  // One upload at a time, each with its own progress; the picker waits meanwhile.
  input.disabled = true;
  for (const file of files) await upload(file);
  await loadAssets();
  input.disabled = false;
});

let unsubscribe = null;
function bindBucket() {
  if (unsubscribe) unsubscribe();
  unsubscribe = ctx.assets.subscribe(loadAssets);
}
ctx.onConfigChange(() => {
  bindBucket();
  loadAssets();
});

bindBucket();
await loadAssets();
