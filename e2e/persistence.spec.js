// A reload keeps all data: documents, asset files, collection items, and the dashboard's
// layout and bucket links.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, moveTo, png, diskFile } from "./helpers.js";

test("a reload keeps all data and the bucket links", async ({ page }, testInfo) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "survives a reload");
  await moveTo(page, "notes-b", "primary", "notes-a");
  await expect(await noteField(page, "notes-b")).toHaveValue("survives a reload");

  const todo = widget(page, "todo-1");
  await expect(todo.locator("#new")).toBeEnabled();
  await todo.locator("#new").fill("water the plants");
  await todo.locator("#new").press("Enter");
  await expect(todo.locator("#kind")).toHaveText("confirmed");

  const gallery = widget(page, "gallery-1");
  await expect(gallery.locator("#file")).toBeEnabled();
  await gallery.locator("#file").setInputFiles(diskFile(testInfo, "kept.png", png(32)));
  await expect(gallery.locator("#status")).toHaveText("Uploaded kept.png");

  const mixed = widget(page, "mixed-1");
  await expect(mixed.locator("#title")).toBeEnabled();
  await mixed.locator("#title").fill("Holiday");
  await mixed.getByRole("button", { name: "Save" }).click();
  await expect(mixed.locator("#heading")).toHaveText("Holiday");
  await expect(mixed.locator("#status")).toHaveText("Settings saved");

  const forms = widget(page, "forms-1");
  await expect(forms.locator("#add")).toBeEnabled();
  await forms.locator("#email").fill("kept@example.com");
  await forms.getByRole("button", { name: "Add submission" }).click();
  await expect(forms.locator("#count")).toHaveText("1 submission");

  // A half-typed task is kept in ctx.cache (browser-only) and comes back after the reload.
  await todo.locator("#new").fill("half-typed task");
  await expect(todo.locator("#new")).toHaveAttribute("data-cached", "true");

  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");

  await expect(await noteField(page, "notes-a")).toHaveValue("survives a reload");
  await expect(await noteField(page, "notes-b")).toHaveValue("survives a reload");
  await expect(page.locator('article[data-instance="notes-b"] .buckets')).toContainText("primary → notes-a");
  await expect(todo.locator("#list")).toContainText("water the plants");
  await expect(todo.locator("#new")).toHaveValue("half-typed task");
  await expect(gallery.locator("figure.thumb img[alt='kept.png']")).toBeVisible();
  await expect(mixed.locator("#heading")).toHaveText("Holiday");
  await expect(forms.locator("#list")).toContainText("kept@example.com");
});
