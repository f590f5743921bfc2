// An untrusted widget (www/widgets/attacker/) mounted through the "Mount your own widget"
// form tries to read other widgets' data, forge messages to other iframes and the host
// window, name another instance id and use undeclared collections. Everything must fail, and
// the victims' data must be unchanged afterwards.
import { test, expect } from "@playwright/test";
import { openDashboard, widget, noteField, writeNote, screenshot } from "./helpers.js";

test("an attacker widget cannot read other widgets' data or act on their behalf", async ({ page }) => {
  await openDashboard(page);
  await writeNote(page, "notes-a", "SECRET plans of Notes A");
  const forms = widget(page, "forms-1");
  await expect(forms.locator("#add")).toBeEnabled();
  await forms.locator("#email").fill("SECRET@example.com");
  await forms.getByRole("button", { name: "Add submission" }).click();
  await expect(forms.locator("#count")).toHaveText("1 submission");

  const mount = page.locator("#mount-form");
  await mount.getByLabel("Widget URL").fill("/widgets/attacker/index.html?victim=notes-a");
  await mount.getByLabel("Title").fill("Attacker");
  await mount.getByLabel("Instance id").fill("attacker-1");
  await mount.getByLabel("Manifest (a URL, or the JSON itself)").fill("/widgets/attacker/manifest.json");
  await mount.getByRole("button", { name: "Mount" }).click();
  await expect(mount.locator("#mount-error")).toBeEmpty();

  const attacker = widget(page, "attacker-1");
  await expect(attacker.locator("#done")).toBeVisible({ timeout: 45_000 });
  const checks = attacker.locator("#checks li");
  await expect(checks).toHaveCount(13);
  await expect(attacker.locator('#checks li[data-outcome="leaked"]')).toHaveCount(0);
  await expect(attacker.locator('#checks li[data-outcome="blocked"]')).toHaveCount(13);
  await expect(attacker.locator("body")).not.toContainText("SECRET");
  // Keep what each attack got back with the test result (useful when one starts leaking).
  await test.info().attach("attack results", { body: (await checks.allTextContents()).join("\n"), contentType: "text/plain" });
  if (process.env.MONODIT_E2E_VERBOSE) console.log((await checks.allTextContents()).join("\n"));
  await page.locator('article[data-instance="attacker-1"]').scrollIntoViewIfNeeded();
  await screenshot(page, "attacker", { keepScroll: true });

  // The victims are intact: same note, no forged write, and the widgets still work on their
  // own ports (the forged handshakes did not take them over).
  await expect(await noteField(page, "notes-a")).toHaveValue("SECRET plans of Notes A");
  await writeNote(page, "notes-a", "still mine");
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  await expect(await noteField(page, "notes-a")).toHaveValue("still mine");
  await expect(widget(page, "forms-1").locator("#list")).toContainText("SECRET@example.com");
  // No bucket of the attacker's schema was created under a victim's name.
  await expect(page.locator('#topology article.bucket[data-bucket="notes-a"]')).toContainText("notes.plaintext v1");
});

test("the dashboard refuses a widget from another URL that claims a mounted widget's manifest id", async ({ page }) => {
  await openDashboard(page);
  const forms = widget(page, "forms-1");
  await expect(forms.locator("#sample")).toBeEnabled();
  await forms.locator("#sample").click();
  await expect(forms.locator("#count")).toHaveText("12 submissions");

  // Same plugin id as the Forms widget: it would read its submissions and replace its indexes.
  const mount = page.locator("#mount-form");
  await mount.getByLabel("Widget URL").fill("/widgets/attacker/index.html");
  await mount.getByLabel("Instance id").fill("fake-forms");
  await mount
    .getByLabel("Manifest (a URL, or the JSON itself)")
    .fill(JSON.stringify({ id: "forms", storage: { submissions: { indexes: ["email"] } } }));
  await mount.getByRole("button", { name: "Mount" }).click();
  await expect(mount.locator("#mount-error")).toContainText('Manifest id "forms" already belongs to Forms');
  await expect(page.locator('article[data-instance="fake-forms"]')).toHaveCount(0);

  // The Forms widget's indexed queries still work.
  await forms.locator("#filter").selectOption("pending");
  await expect(forms.locator("#count")).toHaveText("4 submissions");
  await expect(forms.locator("#list li")).toHaveCount(4);
  await expect(forms.locator("#status")).not.toContainText("NOT_INDEXED");
});
