// Two Notes widgets (notes.plaintext v1) connected to one bucket through the topology panel
// update each other live on the page.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, bucketCard, moveTo, screenshot } from "./helpers.js";

test("two Notes widgets share a bucket and update each other live", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "Hello from Notes A");

  // Notes B starts isolated on its own default bucket.
  await expect(page.locator('article[data-instance="notes-b"] .buckets')).toContainText("notes-b (Isolated)");
  await expect(bucketCard(page, "notes-a")).toContainText("notes.plaintext v1");

  // Connect Notes B to Notes A's bucket from the Storage Topology panel.
  await moveTo(page, "notes-b", "primary", "notes-a");
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

test("a remote update never overwrites a draft being typed (the text-editor pattern)", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "base text");

  // A second Notes widget on the same bucket whose saves wait until it loses focus, so its
  // draft stays unsaved for as long as the test needs.
  const form = page.locator("#mount-form");
  await form.getByLabel("Widget URL").fill("/widgets/notes/index.html?saveDelayMs=600000");
  await form.getByLabel("Title").fill("Slow notes");
  await form.getByLabel("Instance id").fill("slow-notes");
  await form.getByLabel("Manifest (a URL, or the JSON itself)").fill("/widgets/notes/manifest.json");
  await form.getByLabel("Config (JSON)").fill('{"storageNamespace": "notes-a"}');
  await form.getByRole("button", { name: "Mount" }).click();
  const slow = await noteField(page, "slow-notes");
  await expect(slow).toHaveValue("base text");

  await slow.focus();
  await slow.press("End");
  await slow.pressSequentially(" + my draft");

  // Notes A writes while the draft is dirty and focused: the event arrives (its badge moves
  // to "confirmed") but the textarea keeps the draft.
  const a = widget(page, "notes-a").locator("#note");
  await a.evaluate((el) => {
    el.value = "remote edit";
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("blur"));
  });
  await expect(widget(page, "notes-a").locator("#status")).toHaveText("Saved");
  await expect(widget(page, "slow-notes").locator("#kind")).toHaveText("confirmed");
  await expect(slow).toBeFocused();
  await expect(slow).toHaveValue("base text + my draft");

  // Leaving the field saves the draft (last writer wins) and both widgets agree.
  await slow.blur();
  await expect(widget(page, "slow-notes").locator("#status")).toHaveText("Saved");
  await expect(a).toHaveValue("base text + my draft");
  await expect(slow).toHaveValue("base text + my draft");
});
