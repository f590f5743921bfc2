// Forms widget on ctx.storage (collections `submissions` / `forms`): submissions filtered by
// status, newest first, paged with the returned cursor until hasMore is false; ctx.log lines
// in the host's event log; the filter kept in ctx.kv across a reload.
import { test, expect } from "@playwright/test";
import { openDashboard, widget } from "./helpers.js";

/**
 * Clicks "Load more" until the list holds `expected` rows. On a loaded CI machine the dashboard
 * can shift under the cursor and a click may land beside the button, so a click is repeated
 * only while the widget is idle (the button is disabled while a page loads) and short of rows:
 * a repeated click can never load a page twice, and a page that never arrives still fails.
 */
async function loadMore(forms, expected) {
  const rows = forms.locator("#list li");
  const more = forms.locator("#more");
  await expect(async () => {
    if (!(await more.isDisabled()) && (await rows.count()) < expected) await more.click({ timeout: 5_000 });
    await expect(rows).toHaveCount(expected, { timeout: 5_000 });
  }).toPass({ timeout: 30_000 });
  await expect(forms.locator("#status")).not.toHaveAttribute("data-kind", "error");
}

test("forms query paginates with the cursor to the end, filtered and ordered", async ({ page }) => {
  await openDashboard(page);
  const forms = widget(page, "forms-1");
  await expect(forms.locator("#sample")).toBeEnabled();
  await forms.locator("#sample").click();
  await expect(forms.locator("#count")).toHaveText("12 submissions");

  // First page: 5 newest first (samples are 1 s apart, #12 is the newest).
  const rows = forms.locator("#list li");
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toContainText("sample12@example.com");
  await expect(forms.locator("#more")).toBeVisible();

  // Follow the cursor to the end.
  await loadMore(forms, 10);
  await loadMore(forms, 12);
  await expect(forms.locator("#more")).toBeHidden();
  await expect(forms.locator("#end")).toBeVisible();
  const all = await rows.evaluateAll((lis) => lis.map((li) => li.querySelector("span").textContent));
  expect(all).toEqual(Array.from({ length: 12 }, (_, i) => `sample${12 - i}@example.com`));

  // Filter by status (uses the ["status", "createdAt"] index): pending are #1, #4, #7, #10.
  await forms.locator("#filter").selectOption("pending");
  await expect(forms.locator("#count")).toHaveText("4 submissions");
  await expect(rows).toHaveCount(4);
  const pending = await rows.evaluateAll((lis) => lis.map((li) => li.querySelector("span").textContent));
  expect(pending).toEqual(["sample10@example.com", "sample7@example.com", "sample4@example.com", "sample1@example.com"]);
  await expect(rows.locator(".badge", { hasText: "pending" })).toHaveCount(4);
  await expect(forms.locator("#more")).toBeHidden();

  // A new submission appears at the top of its filter.
  await forms.locator("#email").fill("new@example.com");
  await forms.locator("#new-status").selectOption("pending");
  await forms.getByRole("button", { name: "Add submission" }).click();
  await expect(forms.locator("#count")).toHaveText("5 submissions");
  await expect(rows.first()).toContainText("new@example.com");
  await expect(forms.locator("#more")).toBeHidden();

  // The widget's ctx.log.info("Stored submission", ...) reaches the host's event log.
  await expect(
    page.locator('#event-list li[data-kind="log"][data-instance="forms-1"]', { hasText: "info: Stored submission" }),
  ).toHaveCount(1);

  // The filter is a user setting in ctx.kv ("settings:" prefix): a reload keeps it.
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
  const again = widget(page, "forms-1");
  await expect(again.locator("#filter")).toHaveValue("pending");
  await expect(again.locator("#count")).toHaveText("5 submissions");
});
