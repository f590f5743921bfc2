// Shared steps of the end-to-end specs. Every spec drives the real dashboard (www/) served by
// a real monodit-server, with real widget iframes (sandbox="allow-scripts").
import { expect } from "@playwright/test";
import { deflateSync } from "node:zlib";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export const TOKEN_KEY = "monodit-demo:token";

/** Opens the dashboard (optionally as another device of the user owning `token`). */
export async function openDashboard(page, { token } = {}) {
  await page.goto(token ? `/?token=${encodeURIComponent(token)}` : "/");
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
}

/** The iframe of a mounted widget, by instance id. */
export function widget(page, instanceId) {
  return page.frameLocator(`article[data-instance="${instanceId}"] iframe`);
}

/** The textarea of a Notes widget, once the widget has loaded its document. */
export async function noteField(page, instanceId) {
  const field = widget(page, instanceId).locator("#note");
  await expect(field).toBeEnabled();
  return field;
}

/** Types a note and waits until the widget says the server confirmed it. */
export async function writeNote(page, instanceId, text) {
  const field = await noteField(page, instanceId);
  await field.fill(text);
  await field.blur();
  await expect(widget(page, instanceId).locator("#status")).toHaveText("Saved");
  await expect(widget(page, instanceId).locator("#kind")).toHaveText("confirmed");
}

export function token(page) {
  return page.evaluate((k) => localStorage.getItem(k), TOKEN_KEY);
}

/** The topology panel's bucket card. */
export function bucketCard(page, bucketId) {
  return page.locator(`#topology article.bucket[data-bucket="${bucketId}"]`);
}

/** The "Move to…" select of one widget binding in the topology panel. */
export function moveSelect(page, instanceId, binding) {
  return page.locator(`#topology li[data-instance="${instanceId}"][data-binding="${binding}"] select`).first();
}

/** Moves a widget binding to `bucketId` with the topology panel's select and Move button. */
export async function moveTo(page, instanceId, binding, bucketId) {
  const row = page.locator(`#topology li[data-instance="${instanceId}"][data-binding="${binding}"]`).first();
  await row.locator("select").selectOption(`bucket:${bucketId}`);
  await row.getByRole("button", { name: /^Move / }).click();
}

/** Calls a backend route as the page's user (dev routes included). */
export async function backend(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body, key }) => {
      const res = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${localStorage.getItem(key)}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    { method, path, body, key: TOKEN_KEY },
  );
}

/** Saves a viewport screenshot; from the top of the page unless `keepScroll`. */
export async function screenshot(page, name, { keepScroll = false } = {}) {
  mkdirSync("e2e/screenshots", { recursive: true });
  if (!keepScroll) await page.evaluate(() => window.scrollTo(0, 0));
  // Viewport only: Chromium does not repaint out-of-view iframes for full-page captures.
  await page.screenshot({ path: `e2e/screenshots/${name}.png` });
}

/**
 * A valid RGB PNG of `size`×`size` pixels (for upload tests): one colour, or pseudo-random
 * noise with `noise` (so it does not compress and the upload has bytes to report progress on).
 */
export function png(size = 64, [r, g, b] = [54, 87, 214], { noise = false } = {}) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour RGB
  const rows = Array.from({ length: size }, () =>
    Buffer.concat([Buffer.from([0]), noise ? randomBytes(size * 3) : Buffer.alloc(size * 3).map((_, i) => [r, g, b][i % 3])]),
  );
  const raw = Buffer.concat(rows);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/**
 * Writes `bytes` to a real file in the test's own output directory and returns its path, for
 * `setInputFiles(path)`: a file picked from disk is what users upload, and Chromium treats
 * it differently from an in-memory buffer (it is read from disk when sent).
 */
export function diskFile(testInfo, name, bytes) {
  const path = testInfo.outputPath(name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** SHA-256 of some bytes, hex. */
export function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * SHA-256 of what the backend serves for the asset `name` of `bucketId`: listed as the page's
 * user, then downloaded from its signed URL with no credentials, as an `<img>` would.
 */
export async function downloadedSha256(page, bucketId, name) {
  const list = await backend(page, "GET", `/v1/assets/${encodeURIComponent(bucketId)}`);
  expect(list.status).toBe(200);
  const asset = list.body.assets.find((a) => a.name === name);
  expect(asset, `asset ${name} in ${bucketId}`).toBeTruthy();
  const res = await page.request.get(asset.url);
  expect(res.status()).toBe(200);
  return sha256(await res.body());
}
