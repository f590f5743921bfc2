//! Errors as JavaScript sees them, on both sides of the port.
//!
//! Every rejection is a JS `Error` whose `message` is the stable code from
//! `monodit_core::ErrorCode` (so `err.message === "QUOTA_EXCEEDED"` works; docs/ERRORS.md), with
//! - `err.code`: the same code,
//! - `err.detail`: a human sentence (may change between releases),
//! - `err.data`: structured context when there is some (e.g. every manifest problem with its
//!   path for INVALID_MANIFEST, `{limit}` for PAYLOAD_TOO_LARGE),
//! - `err.name`: `"MonoditError"`.
//!
//! On the port an error travels as `{code, message, detail?}` (message = the human sentence,
//! detail = the structured context), exactly the HTTP error body of `crates/core`.

use js_sys::{Object, Reflect};
use monodit_core::ErrorCode;
use wasm_bindgen::prelude::wasm_bindgen;
#[cfg(feature = "host")]
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;

/// TypeScript for every rejection of the ctx and Host surfaces. A browser test checks that
/// the union lists every `monodit_core::ErrorCode` (docs/ERRORS.md explains each code).
pub const ERRORS_TS: &str = r#"
/** The stable error codes (`err.message === err.code`). */
export type ErrorCode =
  | "QUOTA_EXCEEDED"
  | "PLAN_REQUIRED"
  | "NOT_FOUND"
  | "CONFLICT"
  | "FORBIDDEN"
  | "UNAUTHENTICATED"
  | "NO_BINDING"
  | "INCOMPATIBLE_BUCKET"
  | "UNDECLARED_COLLECTION"
  | "NOT_INDEXED"
  | "INVALID_ARGUMENT"
  | "PLUGIN_ID_TAKEN"
  | "LIMIT_EXCEEDED"
  | "INVALID_MANIFEST"
  | "INVALID_CURSOR"
  | "PAYLOAD_TOO_LARGE"
  | "NOT_EMBEDDED"
  | "UNSUPPORTED_PROTOCOL"
  | "FILE_UNREADABLE"
  | "TIMEOUT"
  | "NETWORK"
  | "RATE_LIMITED"
  | "CLOSED"
  | "INTERNAL";
/** What every monodit-bridge promise rejects with. */
export interface MonoditError extends Error {
  name: "MonoditError";
  /** Same as `message`: the stable code. */
  message: ErrorCode;
  code: ErrorCode;
  /** A human sentence (may change between releases). */
  detail: string;
  /** Structured context, e.g. `[{path, message}]` for INVALID_MANIFEST, `{limit}` for PAYLOAD_TOO_LARGE. */
  data?: unknown;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const ERRORS_TS_SECTION: &'static str = ERRORS_TS;

/// Builds the `Error` widget authors and host pages catch.
pub fn js_error(code: &str, detail: &str, data: Option<&JsValue>) -> JsValue {
    let e = js_sys::Error::new(code);
    e.set_name("MonoditError");
    let _ = Reflect::set(&e, &"code".into(), &JsValue::from_str(code));
    let _ = Reflect::set(&e, &"detail".into(), &JsValue::from_str(detail));
    if let Some(d) = data.filter(|d| !d.is_undefined() && !d.is_null()) {
        let _ = Reflect::set(&e, &"data".into(), d);
    }
    e.into()
}

/// A JS `Error` for a code with a human sentence.
pub fn code_error(code: ErrorCode, detail: &str) -> JsValue {
    js_error(code.as_str(), detail, None)
}

/// Reads the stable code of any rejection (ours or a foreign exception).
pub fn code_of(err: &JsValue) -> Option<String> {
    Reflect::get(err, &"code".into()).ok()?.as_string()
}

#[cfg(feature = "host")]
pub use host_side::*;

#[cfg(feature = "host")]
mod host_side {
    use super::*;
    use monodit_core::Error;

    fn detail_to_js(detail: &Option<serde_json::Value>) -> JsValue {
        detail
            .as_ref()
            .and_then(|d| crate::protocol::to_js_value(d).ok())
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// The wire shape `{code, message, detail?}` of a core error.
    pub fn to_wire(err: &Error) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &"code".into(), &JsValue::from_str(err.code.as_str()));
        let _ = Reflect::set(&o, &"message".into(), &JsValue::from_str(&err.message));
        let d = detail_to_js(&err.detail);
        if !d.is_undefined() {
            let _ = Reflect::set(&o, &"detail".into(), &d);
        }
        o.into()
    }

    /// A core error as the JS `Error` the host page's promises reject with.
    pub fn to_js(err: &Error) -> JsValue {
        js_error(
            err.code.as_str(),
            &err.message,
            Some(&detail_to_js(&err.detail)),
        )
    }

    /// Any JS rejection as a core error: ours keep their code; foreign exceptions become
    /// INTERNAL with their message (never lost, never a panic).
    pub fn from_js(err: &JsValue) -> Error {
        if let Some(code) = code_of(err).as_deref().and_then(ErrorCode::parse) {
            let detail = Reflect::get(err, &"detail".into())
                .ok()
                .and_then(|d| d.as_string())
                .unwrap_or_else(|| code.as_str().to_owned());
            return Error::new(code, detail);
        }
        let message = err
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| err.as_string())
            .unwrap_or_else(|| "unexpected JavaScript exception".to_owned());
        Error::new(ErrorCode::Internal, message)
    }
}

/// Convenience for facades: `Object` with string keys, ignoring the impossible failure of
/// `Reflect.set` on a fresh plain object.
pub(crate) fn obj(fields: &[(&str, &JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}
