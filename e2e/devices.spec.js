// Another device of the same user (a second browser context: separate IndexedDB, no
// BroadcastChannel between them) catches up after a visibility re-check, without a remount.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, token } from "./helpers.js";

test("a second browser context with the same token sees changes after a visibility re-check", async ({ page, browser }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "first version");

  const other = await browser.newContext();
  try {
    const device2 = await other.newPage();
    await openDashboard(device2, { token: await token(page) });
    await expect(await noteField(device2, "notes-a")).toHaveValue("first version");

    // The first device writes; the second one is already open with its cached copy.
    await writeNote(page, "notes-a", "second version, from device 1");

    // Coming back to the tab re-checks every active bucket. Re-checks are throttled, so keep
    // signalling "visible again" until the new version shows (Playwright retries the block).
    const field = widget(device2, "notes-a").locator("#note");
    await expect(async () => {
      await device2.bringToFront();
      await device2.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      await expect(field).toHaveValue("second version, from device 1", { timeout: 1000 });
    }).toPass({ timeout: 30_000 });
    await expect(widget(device2, "notes-a").locator("#kind")).toHaveText("revalidated");
  } finally {
    await other.close();
  }
});
