// Shared start-up for the example widgets: load the widget build of monodit-bridge and
// connect to the host. Widgets run in sandbox="allow-scripts" iframes (opaque origin), so the
// package is fetched with CORS from the demo server.
import init, { connect } from "/pkg/widget/monodit_bridge.js";

/** Loads the wasm module and waits for the host's handshake. */
export async function start() {
  await init();
  return connect();
}

/** A sentence for a person, from an SDK error (whose `message` is the stable code). */
export function explain(err) {
  const code = err?.code ?? err?.message ?? String(err);
  switch (code) {
    case "PLAN_REQUIRED":
      return "Storage is not available on the Free plan. Switch the demo user to Pro to use it.";
    case "QUOTA_EXCEEDED":
      return "Storage quota exceeded.";
    case "NOT_EMBEDDED":
      return "This widget must be opened inside the monodit dashboard.";
    case "INCOMPATIBLE_BUCKET":
      return "This bucket holds data of another schema.";
    case "PAYLOAD_TOO_LARGE":
      return "That is too large to store.";
    case "NETWORK":
      return "Offline: changes are kept and will be sent when the server is back.";
    default:
      return `${code}${err?.detail ? `: ${typeof err.detail === "string" ? err.detail : JSON.stringify(err.detail)}` : ""}`;
  }
}

/** Shows a status line; `kind` is "info", "ok" or "error" (styled by widget.css). */
export function status(el, text, kind = "info") {
  el.textContent = text;
  el.dataset.kind = kind;
}

/**
 * Calls `action` when `button` is clicked or Enter is pressed in one of `fields`.
 * Widgets run in sandbox="allow-scripts" iframes without allow-forms, where the browser never
 * submits a <form> (not even the submit event fires), so the examples avoid form submission.
 */
export function onAction(button, fields, action) {
  button.addEventListener("click", (event) => {
    event.preventDefault();
    action();
  });
  for (const field of fields) {
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        action();
      }
    });
  }
}
