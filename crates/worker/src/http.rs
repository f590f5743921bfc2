//! HTTP helpers: coded error answers (`{code, message, detail?}` with the code's status, as
//! `server/openapi.yaml` specifies), JSON bodies read with the native server's rules, entity
//! tags and bearer tokens.

use monodit_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Request, Response};

/// The JSON body limit (the native server's 8 MiB).
pub const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// What a handler returns: an answer or a coded error.
pub type Answer = Result<Response, Error>;

/// A Workers runtime failure while building an answer.
pub fn runtime(e: worker::Error) -> Error {
    crate::db::internal("worker runtime", e)
}

/// `value` as JSON with status 200.
pub fn json<T: Serialize>(value: &T) -> Answer {
    Response::from_json(value).map_err(runtime)
}

/// The coded error answer.
pub fn error_response(e: &Error) -> Response {
    let status = e.code.http_status();
    match Response::from_json(e) {
        Ok(r) => r.with_status(status),
        // Serialising a code and a message cannot fail; keep an answer anyway.
        Err(_) => Response::error("internal error", 500)
            .unwrap_or_else(|_| Response::empty().expect("an empty response")),
    }
}

/// `INVALID_ARGUMENT` with a message.
pub fn invalid(message: impl Into<String>) -> Error {
    Error::invalid(message)
}

/// `NOT_FOUND` with a message.
pub fn not_found(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::NotFound, message)
}

/// A header's value, if present and readable.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The bearer token of `Authorization` (UNAUTHENTICATED when missing or malformed).
pub fn bearer(req: &Request) -> Result<String, Error> {
    let unauth = |m: &str| Error::new(ErrorCode::Unauthenticated, m);
    let value = header(req, "authorization")
        .ok_or_else(|| unauth("missing Authorization: Bearer <token>"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .map(str::to_string)
        .ok_or_else(|| unauth("Authorization must be \"Bearer <token>\""))
}

/// Reads a JSON object body: over [`MAX_JSON_BODY`] → PAYLOAD_TOO_LARGE; not an object,
/// malformed or of the wrong shape → INVALID_ARGUMENT naming what serde found. Integral
/// floats (`2.0`) are read as integers where the envelope needs one, as natively.
pub async fn json_body<T: DeserializeOwned>(req: &mut Request) -> Result<T, Error> {
    let too_large = || Error::new(ErrorCode::PayloadTooLarge, "request body too large");
    if let Some(len) = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if len > MAX_JSON_BODY as u64 {
            return Err(too_large());
        }
    }
    let bytes = req
        .bytes()
        .await
        .map_err(|e| invalid(format!("could not read the body: {e}")))?;
    if bytes.len() > MAX_JSON_BODY {
        return Err(too_large());
    }
    parse_json_object(&bytes)
}

/// The JSON rules of [`json_body`], on bytes already read.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("the body must be a JSON object"));
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if e.to_string().starts_with("invalid type: floating point") => {
            let mut value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
            integral_floats_to_integers(&mut value);
            serde_json::from_value(value).map_err(|e| invalid(format!("invalid JSON body: {e}")))
        }
        Err(e) => Err(invalid(format!("invalid JSON body: {e}"))),
    }
}

/// Rewrites numbers such as `557.0` as `557` (within ±2^53, where a float is exact).
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// The entity tag of a version: `"7"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Parses one entity tag (`"7"`, `W/"7"` or `7`) into a version.
pub fn parse_tag(tag: &str) -> Option<u64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t);
    t.parse().ok()
}

/// Whether `If-None-Match` names `version` (or `*`).
pub fn none_match_hits(req: &Request, version: u64) -> bool {
    header(req, "if-none-match").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim() == "*" || parse_tag(t) == Some(version))
    })
}

/// Sets a header on an answer.
pub fn with_header(mut r: Response, name: &str, value: &str) -> Answer {
    r.headers_mut().set(name, value).map_err(runtime)?;
    Ok(r)
}

/// One query parameter, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, Error> {
    let url = req.url().map_err(runtime)?;
    Ok(url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned()))
}

/// One query parameter that may appear at most once (a repeated one is INVALID_ARGUMENT,
/// as the native server's typed query strings answer), percent-decoded.
pub fn query_once(req: &Request, name: &str) -> Result<Option<String>, Error> {
    let url = req.url().map_err(runtime)?;
    let mut values = url.query_pairs().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.into_owned());
    if values.next().is_some() {
        return Err(invalid(format!(
            "bad query string: duplicate field `{name}`"
        )));
    }
    Ok(first)
}

/// Reads what is left of a request body and drops it, inside the runtime (`pipeTo` a sink
/// `WritableStream`: the bytes never enter wasm memory). An answer sent before the client has
/// finished sending (an early `PAYLOAD_TOO_LARGE`, `QUOTA_EXCEEDED`, a replayed upload) would
/// otherwise race the client's writes and reach it as a reset connection. The platform's own
/// request size cap bounds the work. Does nothing when the body was read already.
pub async fn discard_body(req: &Request) {
    let inner = req.inner();
    if inner.body_used() {
        return;
    }
    let Some(body) = inner.body() else {
        return;
    };
    let global = js_sys::global();
    let sink = js_sys::Reflect::get(&global, &JsValue::from_str("WritableStream"))
        .ok()
        .and_then(|c| c.dyn_into::<js_sys::Function>().ok())
        .and_then(|c| js_sys::Reflect::construct(&c, &js_sys::Array::new()).ok());
    let pipe = js_sys::Reflect::get(&body, &JsValue::from_str("pipeTo"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let (Some(sink), Some(pipe)) = (sink, pipe) {
        if let Ok(promise) = pipe.call1(&body, &sink) {
            if let Ok(promise) = promise.dyn_into::<js_sys::Promise>() {
                // A client that hangs up mid-body is not an error here.
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            }
        }
    }
}

/// No answer a client can read (dev faults `uploadResponseLost`, `documentResponseLost`):
/// a Worker cannot drop its connection before the status line, so the answer's head is made
/// larger than HTTP clients accept (hyper's limit is about 400 KiB, browsers' 256 KiB), and
/// the client fails the request as it would a lost connection. Work done before it stays
/// done, as natively (`server/src/http/assets.rs` `lost_answer`).
pub fn lost_answer() -> Answer {
    const HEAD_BYTES: usize = 1024 * 1024;
    let r = Response::empty().map_err(runtime)?.with_status(500);
    with_header(r, "x-monodit-lost-answer", &"x".repeat(HEAD_BYTES))
}

/// Per-user API answers must never sit in a shared or browser HTTP cache (the SDK keeps its
/// own mirror and revalidates with ETags): `Cache-Control: no-store` unless the answer set
/// its own policy (signed downloads do), as natively (`server/src/http/mod.rs` `router`).
pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    if !h.has("cache-control").unwrap_or(true) {
        let _ = h.set("cache-control", "no-store");
    }
    r
}
