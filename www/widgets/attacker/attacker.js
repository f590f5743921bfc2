// Test fixture: a hostile widget. It gets a normal ctx (its own manifest declares one
// d1-json binding of schema attacker.loot and no collections) and tries to reach beyond it.
// Each attempt is reported as a list item with data-outcome "blocked" or "leaked"; the e2e
// spec (e2e/attacker.spec.js) requires every one to be blocked, and separately checks that
// the victims' data did not change. The victim's instance id comes from ?victim= (default
// "notes-a"); a real attacker can guess it just as easily.
import init, { connect } from "/pkg/widget/monodit_bridge.js";

const victim = new URLSearchParams(location.search).get("victim") || "notes-a";
document.getElementById("victim").textContent = victim;
const list = document.getElementById("checks");

// Grab the host's port too: the SDK's handshake listener is not exclusive, so a hostile page
// can always hold the same port object and send raw, hand-crafted requests on it.
let rawPort = null;
window.addEventListener("message", (event) => {
  if (event.source === window.parent && event.data?.type === "monodit:connect" && event.ports[0]) {
    rawPort = event.ports[0];
  }
});

function report(name, outcome, detail) {
  let li = list.querySelector(`[data-check="${name}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.check = name;
    list.append(li);
  }
  li.dataset.outcome = outcome;
  li.textContent = ` ${name}: ${detail}`;
}

// SDK errors carry a string code; DOMExceptions a name (and a legacy numeric code).
const codeOf = (err) => (typeof err?.code === "string" ? err.code : err?.name ?? err?.message ?? String(err));
const mentionsVictim = (value) => value != null && JSON.stringify(value).includes("SECRET");

/** Runs `attempt`; it is blocked when it throws or returns something that is not the loot. */
async function check(name, attempt) {
  report(name, "pending", "running");
  try {
    const got = await attempt();
    if (got === undefined || got === null || got.blocked) {
      report(name, "blocked", got?.why ?? `returned ${JSON.stringify(got)}`);
    } else if (mentionsVictim(got) || got.leaked) {
      report(name, "leaked", JSON.stringify(got).slice(0, 200));
    } else {
      report(name, "blocked", `returned nothing of the victim's: ${JSON.stringify(got).slice(0, 120)}`);
    }
  } catch (err) {
    report(name, "blocked", `rejected ${codeOf(err)}`);
  }
}

/** Sends a raw request on the host port and waits (bounded) for the reply with that id. */
function raw(message) {
  return new Promise((resolve) => {
    if (!rawPort) return resolve({ blocked: true, why: "no raw port was ever handed over" });
    const timer = setTimeout(() => resolve({ blocked: true, why: "no reply" }), 3000);
    rawPort.addEventListener("message", function onReply(event) {
      if (event.data?.id !== message.id) return;
      clearTimeout(timer);
      rawPort.removeEventListener("message", onReply);
      resolve(event.data);
    });
    rawPort.postMessage(message);
  });
}

/** Any successful reply is a leak (undeclared collection, unknown op). */
function mustFail(reply) {
  if (reply.blocked) return reply;
  return reply.ok ? { leaked: true, reply } : { blocked: true, why: `host answered ${reply.error?.code}` };
}

/** A successful reply is fine only if it is about the attacker's own bucket. */
function rawOutcome(reply, ownBucketPrefix) {
  if (reply.blocked) return reply;
  if (!reply.ok) return { blocked: true, why: `host answered ${reply.error?.code}` };
  const v = reply.value;
  if (mentionsVictim(v) || (v?.bucket && !String(v.bucket).startsWith(ownBucketPrefix))) {
    return { leaked: true, v };
  }
  return { blocked: true, why: `served the attacker's own bucket ${v?.bucket ?? ""}` };
}

let ctx;
let nextRawId = 4_000_000_000;

async function runAll() {
  list.replaceChildren();
  document.getElementById("done").hidden = true;

  await check("read another widget's document by namespace", () => ctx.store.get(victim));
  await check("overwrite another widget's document by namespace", () =>
    ctx.store.set({ text: "PWNED by attacker", updatedAt: Date.now() }, victim).then(() => ({ leaked: true })),
  );
  await check("use an undeclared collection (ctx.storage.submissions)", () =>
    ctx.storage.submissions.query({ limit: 5 }),
  );
  await check("raw port: query an undeclared collection", async () =>
    mustFail(await raw({ id: nextRawId++, op: "storage.query", args: { collection: "submissions", options: {} } })),
  );
  await check("raw port: name another instance id", async () =>
    rawOutcome(
      await raw({ id: nextRawId++, op: "store.get", args: { instanceId: victim, userId: "someone-else" } }),
      ctx.instanceId,
    ),
  );
  await check("raw port: write as another instance id", async () => {
    const reply = await raw({
      id: nextRawId++,
      op: "store.set",
      args: { instanceId: victim, value: { text: "PWNED via raw port", updatedAt: Date.now() } },
    });
    // Even when the host accepts the write, it must land in the attacker's own bucket.
    return rawOutcome(reply, ctx.instanceId);
  });
  await check("raw port: unknown op", async () =>
    mustFail(await raw({ id: nextRawId++, op: "admin.deleteBucket", args: { bucketId: victim } })),
  );
  await check("forge a storage request to the host window", async () => {
    window.parent.postMessage(
      { id: 1, op: "store.set", args: { value: { text: "PWNED via window", updatedAt: Date.now() } }, instanceId: victim },
      "*",
    );
    return { blocked: true, why: "posted; the e2e spec checks the victim's note did not change" };
  });
  await check("forge a handshake to the other widget iframes", async () => {
    const received = [];
    for (let i = 0; i < window.parent.frames.length; i++) {
      const frame = window.parent.frames[i];
      if (frame === window) continue;
      const channel = new MessageChannel();
      channel.port1.onmessage = (event) => received.push(event.data);
      frame.postMessage({ type: "monodit:connect", version: 1 }, "*", [channel.port2]);
      frame.postMessage(
        { type: "monodit:init", version: 1, instanceId: victim, kind: "widget", config: {}, collections: [], bindings: [] },
        "*",
      );
    }
    // A widget that accepted the forged port would re-send its calls on it at once.
    await new Promise((r) => setTimeout(r, 1500));
    return received.length ? { leaked: true, received } : { blocked: true, why: "no widget answered on a forged port" };
  });
  await check("read the host page's DOM", () => window.parent.document.title);
  await check("read the host page's localStorage (token)", () => window.parent.localStorage.getItem("monodit-demo:token"));
  await check("open IndexedDB (the host mirror)", () =>
    new Promise((resolve, reject) => {
      const req = indexedDB.open("monodit");
      req.onsuccess = () => resolve({ leaked: true, names: [...req.result.objectStoreNames] });
      req.onerror = () => reject(req.error);
    }),
  );
  await check("call the backend without the host", async () => {
    const res = await fetch(`/v1/documents/${encodeURIComponent(victim)}`);
    return res.ok ? { leaked: true, body: await res.text() } : { blocked: true, why: `HTTP ${res.status}` };
  });

  document.getElementById("done").hidden = false;
}

await init();
ctx = await connect();
document.getElementById("run").addEventListener("click", runAll);
await runAll();
