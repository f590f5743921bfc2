// Two Notes widgets (notes.plaintext v1) connected to one bucket through the topology panel
// update each other live on the page.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, bucketCard, moveSelect, screenshot } from "./helpers.js";

test("two Notes widgets share a bucket and update each other live", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "Hello from Notes A");

  // Notes B starts isolated on its own default bucket.
  await expect(page.locator('article[data-instance="notes-b"] .buckets')).toContainText("notes-b (Isolated)");
  await expect(bucketCard(page, "notes-a")).toContainText("notes.plaintext v1");

  // Connect Notes B to Notes A's bucket from the Storage Topology panel.
  await moveSelect(page, "notes-b", "primary").selectOption("bucket:notes-a");
  await expect(page.locator('article[data-instance="notes-b"] .buckets')).toContainText("primary → notes-a");
  const b = await noteField(page, "notes-b");
  await expect(b).toHaveValue("Hello from Notes A");
  await expect(bucketCard(page, "notes-a")).toContainText("Shared ×2");

  // Typing in either one shows up in the other without a reload.
  await writeNote(page, "notes-b", "Edited in Notes B");
  await expect(widget(page, "notes-a").locator("#note")).toHaveValue("Edited in Notes B");
  await writeNote(page, "notes-a", "And back from A");
  await expect(widget(page, "notes-b").locator("#note")).toHaveValue("And back from A");

  // The event log shows the optimistic and confirmed events of both widgets.
  await expect(page.locator('#event-list li[data-kind="optimistic"][data-instance="notes-a"]').first()).toBeVisible();
  await expect(page.locator('#event-list li[data-kind="confirmed"][data-instance="notes-b"]').first()).toBeVisible();
  await screenshot(page, "notes-shared");
});
