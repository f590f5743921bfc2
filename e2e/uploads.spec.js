// Uploads of real files picked from disk in the Gallery (a sandboxed iframe, so another
// process than the host page in Chromium): small and 20 MB+ files arrive byte for byte, the
// large one through the resumable protocol (and it resumes after a reload of the host page),
// and a file deleted from disk after it was picked is FILE_UNREADABLE, not "Offline".
import { test, expect } from "@playwright/test";
import { unlinkSync } from "node:fs";
import { openDashboard, widget, backend, png, diskFile, sha256, downloadedSha256 } from "./helpers.js";

/** Upload requests the host page sends, as "METHOD path" (query left off). */
function recordUploads(page) {
  const seen = [];
  page.on("request", (req) => {
    const url = new URL(req.url());
    if (url.pathname.startsWith("/v1/uploads") || (req.method() === "POST" && url.pathname.startsWith("/v1/assets/"))) {
      seen.push(`${req.method()} ${url.pathname}`);
    }
  });
  return seen;
}

/** Bytes the gallery's bucket is charged for (`GET /v1/usage`). */
async function galleryBytes(page) {
  const usage = await backend(page, "GET", "/v1/usage");
  return usage.body.buckets.find((b) => b.bucketId === "gallery-1")?.bytes;
}

/** Part numbers of the `PUT /v1/uploads/{id}/parts/{n}` requests seen. */
function partsSent(seen) {
  return seen.map((r) => /^PUT \/v1\/uploads\/[^/]+\/parts\/(\d+)$/.exec(r)).filter(Boolean).map((m) => Number(m[1]));
}

test("a real image picked from disk uploads and downloads byte for byte", async ({ page }, testInfo) => {
  await openDashboard(page);
  const seen = recordUploads(page);
  const gallery = widget(page, "gallery-1");
  await expect(gallery.locator("#file")).toBeEnabled();
  const bytes = png(300, undefined, { noise: true });
  await gallery.locator("#file").setInputFiles(diskFile(testInfo, "disk.png", bytes));
  await expect(gallery.locator("#status")).toHaveText("Uploaded disk.png");
  await expect(gallery.locator("figure.thumb img[alt='disk.png']")).toBeVisible();
  expect(await downloadedSha256(page, "gallery-1", "disk.png")).toBe(sha256(bytes));
  // Small files take one request: nothing was sent twice.
  expect(seen.filter((r) => r.startsWith("POST /v1/assets/"))).toHaveLength(1);
  expect(partsSent(seen)).toEqual([]);
});

test("a 20 MB+ real file from disk goes up in parts and downloads byte for byte", async ({ page }, testInfo) => {
  await openDashboard(page);
  const seen = recordUploads(page);
  const gallery = widget(page, "gallery-1");
  await expect(gallery.locator("#file")).toBeEnabled();
  // 2700×2700 RGB noise: about 21.9 MB, above the default resumable threshold (16 MiB),
  // three 8 MiB parts.
  const bytes = png(2700, undefined, { noise: true });
  expect(bytes.length).toBeGreaterThan(20 * 1024 * 1024);
  await gallery.locator("#file").setInputFiles(diskFile(testInfo, "large.png", bytes));
  await expect(gallery.locator("#status")).toHaveText("Uploaded large.png", { timeout: 60_000 });
  await expect(gallery.locator("#progress")).toHaveJSProperty("value", 1);
  expect(partsSent(seen)).toEqual([1, 2, 3]);
  expect(seen.filter((r) => r.startsWith("POST /v1/assets/"))).toEqual([]);
  expect(await downloadedSha256(page, "gallery-1", "large.png")).toBe(sha256(bytes));
  expect(await galleryBytes(page)).toBe(bytes.length);
});

test("a reload of the host page mid-upload resumes at the first missing part when the file is picked again", async ({ page }, testInfo) => {
  await openDashboard(page);
  const gallery = widget(page, "gallery-1");
  await expect(gallery.locator("#file")).toBeEnabled();
  const bytes = png(2700, undefined, { noise: true });
  const path = diskFile(testInfo, "resume.png", bytes);

  // Part 2 never reaches the server before the reload: the network drops it (and its retries).
  let dropped = 0;
  await page.route(/\/v1\/uploads\/[^/]+\/parts\/2$/, (route) => {
    dropped += 1;
    return route.abort("connectionreset");
  });
  await gallery.locator("#file").setInputFiles(path);
  await expect.poll(() => dropped).toBeGreaterThan(0);

  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  await page.unrouteAll({ behavior: "wait" });
  const seen = recordUploads(page);
  await expect(gallery.locator("#file")).toBeEnabled();
  await gallery.locator("#file").setInputFiles(path);
  await expect(gallery.locator("#status")).toHaveText("Uploaded resume.png", { timeout: 60_000 });
  // Part 1 was already stored: only the missing parts went up after the reload.
  expect(partsSent(seen)).toEqual([2, 3]);
  expect(await downloadedSha256(page, "gallery-1", "resume.png")).toBe(sha256(bytes));
  const list = await backend(page, "GET", "/v1/assets/gallery-1");
  expect(list.body.assets.map((a) => a.name)).toEqual(["resume.png"]);
  expect(await galleryBytes(page)).toBe(bytes.length);
});

test("a file deleted from disk after it was picked is FILE_UNREADABLE, not Offline", async ({ page }, testInfo) => {
  await openDashboard(page);
  const gallery = widget(page, "gallery-1");
  const input = gallery.locator("#file");
  await expect(input).toBeEnabled();
  const path = diskFile(testInfo, "gone.png", png(64, undefined, { noise: true }));

  // Hold the widget's change handler until the file is gone from disk, then let it run: the
  // widget hands the host a File whose bytes can no longer be read.
  await input.evaluate(() => {
    window.holdChange = true;
    window.addEventListener("change", (e) => window.holdChange && e.stopImmediatePropagation(), { capture: true });
  });
  await input.setInputFiles(path);
  unlinkSync(path);
  await input.evaluate((el) => {
    window.holdChange = false;
    el.dispatchEvent(new Event("change", { bubbles: true }));
  });
  await expect(gallery.locator("#status")).toHaveText("Could not read gone.png: pick the file again.");
  await expect(gallery.locator("#status")).toHaveAttribute("data-error-code", "FILE_UNREADABLE");
  const list = await backend(page, "GET", "/v1/assets/gallery-1");
  expect(list.body.assets).toEqual([]);
});
