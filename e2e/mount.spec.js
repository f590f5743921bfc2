// "Mount your own widget": a bad manifest is refused with every problem and its path; a good
// one mounts with its own instance id and config (here `storageNamespace`, the
// document binding's bucket field), and survives a reload.
import { test, expect } from "@playwright/test";
import { openDashboard, noteField, writeNote, backend } from "./helpers.js";

test("mount your own widget: manifest problems are listed; config picks the bucket", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "shared through storageNamespace");
  const form = page.locator("#mount-form");

  // Bindings without "widgetType": "dynamic", and a typo inside the contract.
  await form.getByLabel("Widget URL").fill("/widgets/notes/index.html");
  await form.getByLabel("Instance id").fill("bad-one");
  await form.getByLabel("Manifest (a URL, or the JSON itself)").fill(
    JSON.stringify({
      id: "notes",
      storage: { bindings: [{ key: "primary", backend: "d1-json", schemaId: "notes.plaintext", schemaVersoin: 1 }] },
    }),
  );
  await form.getByRole("button", { name: "Mount" }).click();
  const error = page.locator("#mount-error");
  await expect(error).toContainText("INVALID_MANIFEST");
  await expect(error).toContainText("$.storage.bindings[0].schemaVersoin");
  await expect(error).toContainText("widgetType");
  await expect(page.locator('article[data-instance="bad-one"]')).toHaveCount(0);

  // A valid manifest with a config that points the document binding at Notes A's bucket.
  await form.getByLabel("Title").fill("My notes");
  await form.getByLabel("Instance id").fill("my-notes");
  await form.getByLabel("Manifest (a URL, or the JSON itself)").fill("/widgets/notes/manifest.json");
  await form.getByLabel("Config (JSON)").fill('{"storageNamespace": "notes-a"}');
  await form.getByRole("button", { name: "Mount" }).click();
  await expect(error).toBeEmpty();
  await expect(await noteField(page, "my-notes")).toHaveValue("shared through storageNamespace");
  await expect(page.locator('article[data-instance="my-notes"] .buckets')).toContainText("primary → notes-a");

  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  await expect(await noteField(page, "my-notes")).toHaveValue("shared through storageNamespace");

  // Removing it from the dashboard unmounts and unregisters it, and it stays removed after a reload.
  await page.getByRole("button", { name: "Remove My notes from the dashboard" }).click();
  await expect(page.locator('article[data-instance="my-notes"]')).toHaveCount(0);
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  await expect(page.locator('article[data-instance="my-notes"]')).toHaveCount(0);
  // host.removeInstance unregistered it on the backend too; the other widgets stay registered.
  const { status, body } = await backend(page, "GET", "/v1/instances");
  expect(status).toBe(200);
  const ids = body.map((i) => i.instanceId);
  expect(ids).toContain("notes-a");
  expect(ids).not.toContain("my-notes");
});
