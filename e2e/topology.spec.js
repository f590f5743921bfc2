// The Storage Topology panel: re-linking offers only compatible buckets, and deleting a bucket
// (after confirmation) makes its widgets fall back to their isolated buckets.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, bucketCard, moveSelect, screenshot } from "./helpers.js";

test("re-link and delete from the topology panel; widgets fall back to isolated", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "A's own note");
  await writeNote(page, "notes-b", "B's own note");

  // A todo.list bucket exists too; it must not be offered to a notes.plaintext binding.
  const todo = widget(page, "todo-1");
  await expect(todo.locator("#new")).toBeEnabled();
  await todo.locator("#new").fill("buy milk");
  await todo.locator("#new").press("Enter");
  await expect(todo.locator("#kind")).toHaveText("confirmed");
  await expect(bucketCard(page, "todo-1")).toContainText("todo.list v1");
  await expect(bucketCard(page, "notes-b")).toBeVisible();

  const select = moveSelect(page, "notes-b", "primary");
  await expect(select.locator("option", { hasText: "notes-a" })).toHaveCount(1);
  await expect(select.locator('option[value="bucket:todo-1"]')).toHaveCount(0);
  await expect(moveSelect(page, "todo-1", "list").locator('option[value^="bucket:notes"]')).toHaveCount(0);
  // Isolated badges before any sharing.
  await expect(bucketCard(page, "notes-b").locator(".badge.isolated")).toHaveText("Isolated");

  // Re-link Notes B into Notes A's bucket (the Move button, by keyboard).
  await select.selectOption("bucket:notes-a");
  await page.getByRole("button", { name: "Move Notes B (primary)" }).press("Enter");
  await expect(await noteField(page, "notes-b")).toHaveValue("A's own note");
  await expect(bucketCard(page, "notes-a")).toContainText("Shared ×2");
  await expect(bucketCard(page, "notes-a").locator('li[data-instance="notes-b"]')).toBeVisible();
  await screenshot(page, "topology-shared");

  // Delete the shared bucket: a confirmation first (cancel keeps it), then delete.
  // By keyboard: Enter on the button opens the dialog with focus on Cancel; Escape closes it.
  const deleteButton = bucketCard(page, "notes-a").getByRole("button", { name: "Delete bucket notes-a" });
  await deleteButton.focus();
  await page.keyboard.press("Enter");
  const dialog = page.locator("dialog#confirm");
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText("Notes A, Notes B will fall back");
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await deleteButton.click();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(bucketCard(page, "notes-a")).toBeVisible();

  await bucketCard(page, "notes-a").getByRole("button", { name: "Delete bucket notes-a" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(bucketCard(page, "notes-a")).toHaveCount(0);

  // Notes B is back on its own isolated bucket, which still holds its own note;
  // Notes A's own bucket was the deleted one, so it is empty.
  await expect(page.locator('article[data-instance="notes-b"] .buckets')).toContainText("notes-b (Isolated)");
  await expect(await noteField(page, "notes-b")).toHaveValue("B's own note");
  await expect(await noteField(page, "notes-a")).toHaveValue("");
  await expect(bucketCard(page, "notes-b").locator(".badge.isolated")).toHaveText("Isolated");
});
