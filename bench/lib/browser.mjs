// Headless Debian Chromium through Playwright (never a downloaded browser), and the bench
// page helpers: a fresh user, the host page, and the frames of mounted widgets.
import { chromium } from "@playwright/test";

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
];

export async function launch() {
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
}

/** A fresh Pro user on the dev server: `{userId, token}`. */
export async function newUser(baseUrl) {
  const res = await fetch(`${baseUrl}/v1/dev/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ plan: "pro", addons: 0 }),
  });
  if (!res.ok) throw new Error(`create user: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/** Opens (or reloads) the bench host page for `token` in `page`, with a bounded wait. */
export async function openHost(page, baseUrl, token, backend) {
  const api = backend ? `&backend=${encodeURIComponent(backend)}` : "";
  await page.goto(`${baseUrl}/bench/host.html?token=${encodeURIComponent(token)}${api}`);
  await page.waitForFunction(() => window.benchHostReady === true, null, { timeout: 30_000 });
}

/** A new browser context + host page for `token`; errors in any frame are printed. */
export async function hostPage(browser, baseUrl, token, backend) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  page.on("console", (m) => {
    // 404s are expected: a never-written bucket is looked up before its first write.
    if (m.text().startsWith("Failed to load resource")) return;
    if (m.type() === "error" || m.type() === "warning") console.error(`[console ${m.type()}] ${m.text()}`);
  });
  await openHost(page, baseUrl, token, backend);
  return { context, page };
}

/** The Playwright frame of a mounted widget (its iframe's name is its instance id). */
export async function widgetFrame(page, name) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const frame = page.frame({ name });
    if (frame && (await frame.evaluate(() => !!window.bench).catch(() => false))) return frame;
    if (Date.now() > deadline) throw new Error(`widget frame ${name} never became ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Mounts widgets through the host page and returns their frames. */
export async function mountWidgets(page, widgets) {
  await page.evaluate((w) => window.benchHost.mount(w), widgets);
  return Promise.all(widgets.map((w) => widgetFrame(page, w.instanceId)));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
