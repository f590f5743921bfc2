// Forms: plugin collections on ctx.storage. `submissions` is declared with the indexes of
// manifest.json, so "filter by status, newest first" uses the ["status", "createdAt"]
// composite and "all, newest first" uses "createdAt". Pages come from query() with the
// returned cursor while hasMore. The chosen filter is a user setting in ctx.kv under the
// `settings:` prefix, and stored submissions are reported with ctx.log.info.
import { start, explain, status, onAction } from "../shared/bridge.js";

const PAGE_SIZE = 5;
const email = document.getElementById("email");
const newStatus = document.getElementById("new-status");
const addButton = document.getElementById("add");
const sampleButton = document.getElementById("sample");
const filter = document.getElementById("filter");
const countEl = document.getElementById("count");
const list = document.getElementById("list");
const more = document.getElementById("more");
const end = document.getElementById("end");
const statusEl = document.getElementById("status");

let ctx;
try {
  ctx = await start();
} catch (err) {
  status(statusEl, explain(err), "error");
  throw err;
}
const { submissions, forms } = ctx.storage;

let cursor;
// Each reset starts a new generation; a page that arrives for an older generation (the start-up
// load racing a sample insert, say) is dropped instead of being appended to the new list.
let generation = 0;

function where() {
  return filter.value ? { status: filter.value } : undefined;
}

function row({ id, data }) {
  const li = document.createElement("li");
  li.dataset.id = id;
  const text = document.createElement("span");
  text.style.flex = "1";
  text.textContent = `${data.email}`;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.textContent = data.status;
  const when = document.createElement("time");
  when.className = "muted";
  when.dateTime = data.createdAt;
  when.textContent = new Date(data.createdAt).toLocaleTimeString();
  li.append(text, badge, when);
  return li;
}

/** Loads the first page (reset) or the next one, using the cursor of the previous page. */
async function loadPage(reset) {
  if (reset) {
    generation += 1;
    cursor = undefined;
    list.replaceChildren();
    more.hidden = true;
    end.hidden = true;
  } else if (more.disabled) {
    return; // a page is already on its way; a second click must not load it twice
  }
  const mine = generation;
  more.disabled = true;
  list.setAttribute("aria-busy", "true");
  try {
    if (reset) {
      const total = await submissions.count(where());
      if (mine !== generation) return;
      countEl.textContent = `${total} submission${total === 1 ? "" : "s"}`;
    }
    const result = await submissions.query({
      where: where(),
      orderBy: { createdAt: "desc" },
      limit: PAGE_SIZE,
      cursor,
    });
    if (mine !== generation) return;
    list.append(...result.items.map(row));
    cursor = result.cursor;
    more.hidden = !result.hasMore;
    end.hidden = result.hasMore;
  } catch (err) {
    if (mine === generation) status(statusEl, explain(err), "error");
  } finally {
    if (mine === generation) {
      more.disabled = false;
      list.removeAttribute("aria-busy");
    }
  }
}

function submission(emailAddress, state, createdAt = new Date().toISOString()) {
  return { formId: "contact", email: emailAddress, data: { message: "Hello" }, status: state, createdAt };
}

onAction(addButton, [email], async () => {
  if (!email.checkValidity() || !email.value) {
    status(statusEl, "Enter an email address first.", "error");
    return;
  }
  try {
    const id = `sub_${Date.now()}`;
    await submissions.put(id, submission(email.value, newStatus.value));
    const item = await submissions.get(id);
    ctx.log.info("Stored submission", { id: item?.formId });
    email.value = "";
    status(statusEl, "Submission stored", "ok");
    await loadPage(true);
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
});

sampleButton.addEventListener("click", async () => {
  const states = ["pending", "approved", "spam"];
  const base = Date.now();
  const items = Array.from({ length: 12 }, (_, i) => ({
    id: `sub_${base}_${i}`,
    data: submission(`sample${i + 1}@example.com`, states[i % 3], new Date(base - (11 - i) * 1000).toISOString()),
  }));
  try {
    await submissions.putMany(items);
    status(statusEl, "12 samples stored", "ok");
    await loadPage(true);
  } catch (err) {
    status(statusEl, explain(err), "error");
  }
});

filter.addEventListener("change", () => {
  // A user setting (ctx.kv with the settings: prefix); the list does not wait for it.
  ctx.kv.set("settings:filter", filter.value).catch((err) => status(statusEl, explain(err), "error"));
  loadPage(true);
});
more.addEventListener("click", () => loadPage(false));

try {
  // The `forms` collection holds the form definitions; make sure "contact" exists.
  if (!(await forms.exists("contact"))) {
    await forms.put("contact", { slug: "contact", title: "Contact us" });
  }
  const saved = await ctx.kv.get("settings:filter");
  if (typeof saved === "string" && [...filter.options].some((o) => o.value === saved)) filter.value = saved;
  addButton.disabled = false;
  sampleButton.disabled = false;
  await loadPage(true);
} catch (err) {
  status(statusEl, explain(err), "error");
}
