// The event log: every optimistic / confirmed / revalidated / rollback event the host emits,
// and the widgets' ctx.log lines, newest first, with the widget and bucket it concerns.

const MAX_ROWS = 200;

export function createEventLog(list, titleOf) {
  function add(event) {
    const li = document.createElement("li");
    const kind = String(event.kind ?? event.type ?? "event");
    li.dataset.kind = kind;
    li.dataset.instance = event.instanceId ?? "";
    const time = document.createElement("time");
    time.className = "muted";
    time.textContent = new Date().toLocaleTimeString("en-GB");
    const what = document.createElement("span");
    const k = document.createElement("span");
    k.className = `kind kind-${kind}`;
    k.textContent = kind;
    const who = event.instanceId ? titleOf(event.instanceId) : "host";
    what.append(k, ` ${who}`);
    const where = document.createElement("span");
    where.className = "muted";
    const parts = [];
    if (event.bucket ?? event.bucketId) parts.push(event.bucket ?? event.bucketId);
    if (event.version != null) parts.push(`v${event.version}`);
    if (event.pending) parts.push("pending");
    if (event.error) parts.push(event.error.code ?? event.error);
    // ctx.log lines: untrusted text, shown as text only.
    if (event.type === "log") parts.push(`${event.level}: ${String(event.message).slice(0, 200)}`);
    where.textContent = parts.join(" · ");
    li.append(time, what, where);
    list.prepend(li);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
  }
  return { add, clear: () => list.replaceChildren() };
}
