// Fills every example widget and takes the dashboard screenshot the README shows
// (e2e/screenshots/dashboard.png; copied by hand to docs/dashboard.png).
import { test, expect } from "@playwright/test";
import { openDashboard, widget, writeNote, moveTo, noteField, bucketCard, png, diskFile } from "./helpers.js";

test("showcase: every example widget with data, for the README screenshot", async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 1440, height: 1240 });
  await openDashboard(page);
  await writeNote(page, "notes-a", "Team standup notes\n- ship the topology panel\n- review quotas");
  await moveTo(page, "notes-b", "primary", "notes-a");
  await expect(await noteField(page, "notes-b")).toHaveValue(/Team standup notes/);

  const gallery = widget(page, "gallery-1");
  await expect(gallery.locator("#file")).toBeEnabled();
  await gallery.locator("#file").setInputFiles([
    diskFile(testInfo, "indigo.png", png(96, [54, 87, 214])),
    diskFile(testInfo, "teal.png", png(96, [15, 139, 141])),
    diskFile(testInfo, "noise.png", png(96, undefined, { noise: true })),
  ]);
  await expect(gallery.locator("figure.thumb")).toHaveCount(3);
  // The Mixed widget shares the Gallery's image bucket (same gallery.assets v1 contract).
  await moveTo(page, "mixed-1", "assets", "gallery-1");
  const mixed = widget(page, "mixed-1");
  await expect(mixed.locator("figure.thumb")).toHaveCount(3);
  await mixed.locator("#title").fill("Brand colours");
  await mixed.getByRole("button", { name: "Save" }).click();
  await expect(mixed.locator("#heading")).toHaveText("Brand colours");

  const todo = widget(page, "todo-1");
  await expect(todo.locator("#new")).toBeEnabled();
  const tasks = ["Write the README", "Record the benchmark", "Demo to the team"];
  // Added as quickly as a user types: no waiting for the server in between.
  for (const task of tasks) {
    await todo.locator("#new").fill(task);
    await todo.locator("#new").press("Enter");
  }
  await expect(todo.locator("#kind")).toHaveText("confirmed");
  for (const task of tasks) await expect(todo.locator("#list")).toContainText(task);
  await expect(todo.locator("#list li")).toHaveCount(3);
  await todo.getByRole("checkbox", { name: "Write the README" }).check();

  const forms = widget(page, "forms-1");
  await expect(forms.locator("#sample")).toBeEnabled();
  await forms.locator("#sample").click();
  await expect(forms.locator("#count")).toHaveText("12 submissions");

  await expect(bucketCard(page, "gallery-1")).toContainText("Shared ×2");
  // The topology panel catches up with the newest writes (it refreshes on host events).
  await expect(bucketCard(page, "todo-1")).toBeVisible();
  await expect(bucketCard(page, "mixed-1")).toBeVisible();
  await expect(page.locator('#topology [data-section="unstored"]')).toHaveCount(0);
  for (const f of [gallery, mixed]) {
    await expect.poll(() => f.locator("figure.thumb img").evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth > 0))).toBe(true);
  }
  await page.screenshot({ path: "e2e/screenshots/dashboard.png" });
});

test("the Dynamic Theme keeps its palette under its explicit namespace and recolours the dashboard", async ({ page }) => {
  await openDashboard(page);
  const theme = widget(page, "aurora-theme");
  await theme.getByRole("button", { name: "Teal" }).click();
  await expect(theme.locator("#status")).toHaveText("Teal saved");
  await expect(theme.getByRole("button", { name: "Teal" })).toHaveAttribute("aria-pressed", "true");
  await expect.poll(() => page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--accent").trim())).toBe("#0f8b8d");
  // Themes are not widgets in the topology: the bucket is listed, with no widget connected.
  await expect(bucketCard(page, "aurora-theme-palette")).toContainText("theme.palette v1");
  await expect(bucketCard(page, "aurora-theme-palette").locator("li")).toHaveCount(0);
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  await expect(widget(page, "aurora-theme").getByRole("button", { name: "Teal" })).toHaveAttribute("aria-pressed", "true");
});
