// Offline, multi-tab and multi-device writes against a real server that is stopped and
// restarted on the same port and database (e2e/server.js), with real tabs of one browser
// context (shared IndexedDB, BroadcastChannel and Web Locks) and a second browser context
// as another device.
import { test, expect } from "@playwright/test";
import { widget, noteField, writeNote, backend, token } from "./helpers.js";
import { RestartableServer } from "./server.js";

let server;
test.beforeEach(async () => {
  server = new RestartableServer();
  await server.start();
});
test.afterEach(async () => {
  await server?.dispose();
});

async function open(page, query = "") {
  await page.goto(`${server.url}/${query}`);
  await expect(page.locator("body")).toHaveAttribute("data-ready", "true");
}

/** The server's document behind a widget's binding (null when never written). */
async function serverDoc(page, instanceId, binding = "primary") {
  const instances = await backend(page, "GET", "/v1/instances");
  const list = Array.isArray(instances.body) ? instances.body : instances.body?.instances ?? [];
  const bucket = list.find((i) => i.instanceId === instanceId)?.buckets?.[binding];
  if (!bucket) return null;
  const res = await backend(page, "GET", `/v1/documents/${encodeURIComponent(bucket)}`);
  return res.status === 200 ? { value: res.body.value, version: res.body.version } : null;
}

test("an open tab sends the write a closed tab left, and an older write never overwrites a newer one", async ({ context }) => {
  const tab1 = await context.newPage();
  await open(tab1);
  await writeNote(tab1, "notes-a", "saved while online");
  const tab2 = await context.newPage();
  await open(tab2);
  await expect(await noteField(tab2, "notes-a")).toHaveValue("saved while online");
  const before = await serverDoc(tab2, "notes-a");
  expect(before.value.text).toBe("saved while online");

  // The server goes away. Tab 1 writes (shown at once in both tabs), then closes.
  await server.stop();
  const field1 = await noteField(tab1, "notes-a");
  await field1.fill("written in tab 1 while the server was down");
  await field1.blur();
  await expect(widget(tab1, "notes-a").locator("#kind")).toHaveText("optimistic");
  await expect(widget(tab2, "notes-a").locator("#note")).toHaveValue("written in tab 1 while the server was down");
  await tab1.close();

  // The server comes back on the same port and database. Tab 2 is never reloaded, gets no
  // `online` event (the network never went away) and no focus: it sends the write itself.
  await server.start();
  await expect
    .poll(async () => (await serverDoc(tab2, "notes-a"))?.value?.text, { timeout: 30_000 })
    .toBe("written in tab 1 while the server was down");
  await expect(widget(tab2, "notes-a").locator("#kind")).toHaveText("confirmed");

  // Tab 2 saves newer text, then reloads: nothing older comes back over it.
  await writeNote(tab2, "notes-a", "newer text from tab 2");
  const saved = await serverDoc(tab2, "notes-a");
  expect(saved.value.text).toBe("newer text from tab 2");
  await tab2.reload();
  await expect(tab2.locator("body")).toHaveAttribute("data-ready", "true");
  await expect(await noteField(tab2, "notes-a")).toHaveValue("newer text from tab 2");
  const outbox = await tab2.evaluate(
    () =>
      new Promise((resolve, reject) => {
        // The user's mirror: every tab of this browser shares it.
        indexedDB.databases().then((dbs) => {
          const name = dbs.map((d) => d.name).find((n) => n?.startsWith("monodit-bridge"));
          if (!name) return resolve(-1);
          const req = indexedDB.open(name);
          req.onsuccess = () => {
            const db = req.result;
            const tx = db.transaction("outbox", "readonly");
            const count = tx.objectStore("outbox").count();
            count.onsuccess = () => { db.close(); resolve(count.result); };
            count.onerror = () => reject(count.error);
          };
          req.onerror = () => reject(req.error);
        });
      }),
  );
  expect(outbox).toBe(0);
  const after = await serverDoc(tab2, "notes-a");
  expect(after).toEqual(saved);
});

test("two devices adding to one Todo list at the same time keep both items", async ({ page, browser }) => {
  await open(page);
  const todo1 = widget(page, "todo-1");
  await expect(todo1.locator("#new")).toBeEnabled();
  await todo1.locator("#new").fill("first item");
  await todo1.locator("#new").press("Enter");
  await expect(todo1.locator("#kind")).toHaveText("confirmed");

  const other = await browser.newContext();
  try {
    const device2 = await other.newPage();
    await open(device2, `?token=${encodeURIComponent(await token(page))}`);
    const todo2 = widget(device2, "todo-1");
    await expect(todo2.locator("#list")).toContainText("first item");
    await expect(todo2.locator("#new")).toBeEnabled();

    // Both devices add an item at once, each on the version it has.
    await todo1.locator("#new").fill("milk from device 1");
    await todo2.locator("#new").fill("bread from device 2");
    await Promise.all([todo1.locator("#new").press("Enter"), todo2.locator("#new").press("Enter")]);

    await expect
      .poll(async () => (await serverDoc(page, "todo-1", "list"))?.value?.items?.map((i) => i.text).sort(), { timeout: 20_000 })
      .toEqual(["bread from device 2", "first item", "milk from device 1"]);
    await expect(todo1.locator("#status")).toHaveText("");
    await expect(todo2.locator("#status")).toHaveText("");
    // Each device shows both once it re-checks (coming back to the tab).
    for (const [p, w] of [[page, todo1], [device2, todo2]]) {
      await expect(async () => {
        await p.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
        await expect(w.locator("#list li")).toHaveCount(3, { timeout: 1000 });
      }).toPass({ timeout: 30_000 });
    }
  } finally {
    await other.close();
  }
});

test("two devices adding to one Todo list while the server is down keep both items once it is back", async ({ page, browser }) => {
  await open(page);
  const todo1 = widget(page, "todo-1");
  await expect(todo1.locator("#new")).toBeEnabled();
  await todo1.locator("#new").fill("first item");
  await todo1.locator("#new").press("Enter");
  await expect(todo1.locator("#kind")).toHaveText("confirmed");
  const other = await browser.newContext();
  try {
    const device2 = await other.newPage();
    await open(device2, `?token=${encodeURIComponent(await token(page))}`);
    const todo2 = widget(device2, "todo-1");
    await expect(todo2.locator("#list")).toContainText("first item");
    await expect(todo2.locator("#new")).toBeEnabled();

    // Both edit the same version offline: each shows its own item at once.
    await server.stop();
    await todo1.locator("#new").fill("milk, added offline on device 1");
    await todo1.locator("#new").press("Enter");
    await todo2.locator("#new").fill("bread, added offline on device 2");
    await todo2.locator("#new").press("Enter");
    await expect(todo1.locator("#list")).toContainText("milk, added offline on device 1");
    await expect(todo2.locator("#list")).toContainText("bread, added offline on device 2");
    await expect(todo1.locator("#kind")).toHaveText("optimistic");
    await expect(todo2.locator("#kind")).toHaveText("optimistic");

    // Back online, both queued writes are based on the same version: the one that lands
    // second conflicts, and its update runs again on the list the server has.
    await server.start();
    await expect
      .poll(async () => (await serverDoc(page, "todo-1", "list"))?.value?.items?.map((i) => i.text).sort(), { timeout: 45_000 })
      .toEqual(["bread, added offline on device 2", "first item", "milk, added offline on device 1"]);
    for (const [p, w] of [[page, todo1], [device2, todo2]]) {
      await expect(async () => {
        await p.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
        await expect(w.locator("#list li")).toHaveCount(3, { timeout: 1000 });
      }).toPass({ timeout: 30_000 });
    }
  } finally {
    await other.close();
  }
});

// FIXME (issue 11, open): still fails about 1 run in 8 (`--repeat-each 8`; 2 in 3 before the
// stale-chain and optimistic-display fixes of this sitting). Seen: while the server is down,
// tab 2 shows its first offline item and tab 1's, but not its own second one, for 20 s
// (its event log: four optimistic events at one version, no error in the widget). Two
// engines in one page (tests/browser/store_writes.rs quick_updates_from_two_tabs_of_one_browser_all_land)
// pass every run. Skipped in CI until fixed.
test.fixme("two tabs adding Todo items as fast as a user types, online and with the server down, keep every item", async ({ context }) => {
  const tab1 = await context.newPage();
  await open(tab1);
  const tab2 = await context.newPage();
  await open(tab2);
  const todo1 = widget(tab1, "todo-1");
  const todo2 = widget(tab2, "todo-1");
  await expect(todo1.locator("#new")).toBeEnabled();
  await expect(todo2.locator("#new")).toBeEnabled();

  /** Adds each item with Enter, without waiting for anything in between. */
  async function addQuickly(todo, items) {
    for (const item of items) {
      await todo.locator("#new").fill(item);
      await todo.locator("#new").press("Enter");
    }
  }
  const online = ["tab 1: a", "tab 2: a", "tab 1: b", "tab 2: b"];
  await Promise.all([addQuickly(todo1, [online[0], online[2]]), addQuickly(todo2, [online[1], online[3]])]);
  const serverItems = async () => (await serverDoc(tab1, "todo-1", "list"))?.value?.items?.map((i) => i.text).sort();
  await expect.poll(serverItems, { timeout: 30_000 }).toEqual([...online].sort());

  // The server stops; both tabs keep adding; it comes back and every item lands.
  await server.stop();
  const offline = ["tab 1: offline c", "tab 2: offline c", "tab 1: offline d", "tab 2: offline d"];
  await Promise.all([addQuickly(todo1, [offline[0], offline[2]]), addQuickly(todo2, [offline[1], offline[3]])]);
  await expect(todo1.locator("#list")).toContainText(offline[2]);
  await expect(todo2.locator("#list")).toContainText(offline[3]);
  await server.start();
  await expect.poll(serverItems, { timeout: 60_000 }).toEqual([...online, ...offline].sort());
  for (const [p, w] of [[tab1, todo1], [tab2, todo2]]) {
    await expect(async () => {
      await p.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      await expect(w.locator("#list li")).toHaveCount(8, { timeout: 1000 });
    }).toPass({ timeout: 30_000 });
    await expect(w.locator("#status")).toHaveText("");
  }
});
