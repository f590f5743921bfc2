// The errors the widget's transport client (client.rs) rejects with, built in JS: the same
// shape as `js_error` in src/errors.rs (`message` = the stable code, `code`, `detail`,
// `data`, `name` "MonoditError"). From Rust each field crossed the boundary as a string copy
// and a `Reflect.set`, which cost the widget bundle more than these few lines.

/** A MonoditError with a code, a human sentence and optional structured context. */
export function monoditError(code, detail, data) {
  const e = new Error(code);
  e.name = "MonoditError";
  e.code = code;
  e.detail = detail;
  if (data != null) e.data = data;
  return e;
}

/** A wire error `{code, message, detail?}` as a MonoditError. A code this build does not
 * know (a newer host) is kept as sent; a reply without a string code becomes INTERNAL, so a
 * broken host never yields an `Error` without a code. */
export function wireError(wire) {
  let code = wire?.code;
  if (typeof code !== "string" || !code || code.length > 64) code = "INTERNAL";
  const message = wire?.message;
  return monoditError(code, typeof message === "string" ? message : code, wire?.detail);
}

/** A call whose arguments cannot cross the port (DataCloneError: a function, a DOM node):
 * a bad argument instead of a raw DOMException. */
export function cloneError(e) {
  const message = e?.message;
  return monoditError(
    "INVALID_ARGUMENT",
    "argument cannot be sent to the host: " + (typeof message === "string" ? message : ""),
  );
}

/** A call the host did not answer in time. */
export function timeoutError(op) {
  return monoditError("TIMEOUT", `the host did not answer ${op} in time`);
}

/** `window`, or `undefined` where there is none (a worker). */
export function pageWindow() {
  return typeof window === "undefined" ? undefined : window;
}
