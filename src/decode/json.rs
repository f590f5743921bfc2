//! Structured-clone values (what arrives on a port) to JSON, refusing what JSON cannot hold.

use super::{invalid, too_large};
use crate::protocol::MAX_DEPTH;
use js_sys::{Array, JsString, Object, Reflect};
use monodit_core::Error;
use serde_json::{Map, Number, Value};
use wasm_bindgen::{JsCast, JsValue};

/// Converts a structured-clone value into JSON with a byte budget and a depth limit.
/// Strings are measured before they are copied (a 50 MB string fails at once), shared
/// or cyclic references cannot loop (depth) or multiply work (budget), and non-JSON
/// values (Blob, Date, Map, NaN, ...) are refused.
pub fn js_to_json(v: &JsValue, limit: u64, what: &str) -> Result<Value, Error> {
    let mut budget = limit;
    to_json(v, &mut budget, 0, (limit, MAX_DEPTH), what)
}

/// How deep [`trusted_to_json`] reads: serde_json's recursion limit, which the backend's
/// parser and this crate's earlier serde_json reader shared, so nothing they accepted fails.
const TRUSTED_DEPTH: u32 = 128;

/// A value the host itself or its backend produced (`JSON.parse` of an answer or a
/// cross-tab message, an IndexedDB record) to JSON: no byte budget, the depth of
/// [`TRUSTED_DEPTH`], the same refusals of what JSON cannot hold.
pub(crate) fn trusted_to_json(v: &JsValue, what: &str) -> Result<Value, Error> {
    let mut budget = u64::MAX;
    to_json(v, &mut budget, 0, (u64::MAX, TRUSTED_DEPTH), what)
}

fn spend(budget: &mut u64, n: u64, limit: u64, what: &str) -> Result<(), Error> {
    if n > *budget {
        return Err(too_large(what, limit));
    }
    *budget -= n;
    Ok(())
}

/// `bounds`: the byte limit (for the error message) and the deepest nesting accepted.
fn to_json(
    v: &JsValue,
    budget: &mut u64,
    depth: u32,
    bounds: (u64, u32),
    what: &str,
) -> Result<Value, Error> {
    let (limit, max_depth) = bounds;
    if depth > max_depth {
        return Err(invalid(format!("{what} is nested deeper than {max_depth}")));
    }
    if v.is_null() {
        spend(budget, 4, limit, what)?;
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        spend(budget, 5, limit, what)?;
        return Ok(Value::Bool(b));
    }
    if let Some(n) = v.as_f64() {
        spend(budget, 8, limit, what)?;
        // JS has one number type; integral values become JSON integers (as
        // JSON.stringify writes them), so `1` stays `1`, not `1.0`.
        if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
            return Ok(Value::Number(Number::from(n as i64)));
        }
        return Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("{what} contains a non-finite number")));
    }
    if let Some(s) = v.dyn_ref::<JsString>() {
        // UTF-8 needs at least one byte per UTF-16 unit: a lower bound that is safe to
        // check before copying.
        let units = u64::from(s.length());
        spend(budget, units + 2, limit, what)?;
        let s = String::from(s);
        // Charge the real UTF-8 size beyond the lower bound.
        spend(budget, (s.len() as u64).saturating_sub(units), limit, what)?;
        return Ok(Value::String(s));
    }
    if Array::is_array(v) {
        let arr: &Array = v.unchecked_ref();
        spend(budget, 2 + u64::from(arr.length()), limit, what)?;
        let mut out = Vec::with_capacity((arr.length() as usize).min(4096));
        for item in arr.iter() {
            out.push(to_json(&item, budget, depth + 1, bounds, what)?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_object() && is_plain_object(v) {
        let keys = Object::keys(v.unchecked_ref::<Object>());
        spend(budget, 2 + u64::from(keys.length()), limit, what)?;
        let mut out = Map::new();
        for key in keys.iter() {
            let Some(k) = key.dyn_ref::<JsString>() else {
                continue;
            };
            spend(budget, u64::from(k.length()) + 3, limit, what)?;
            let item = Reflect::get(v, &key).unwrap_or(JsValue::UNDEFINED);
            if item.is_undefined() {
                continue; // JSON.stringify drops undefined members too.
            }
            out.insert(
                String::from(k),
                to_json(&item, budget, depth + 1, bounds, what)?,
            );
        }
        return Ok(Value::Object(out));
    }
    if v.is_undefined() {
        return Err(invalid(format!("{what} is undefined")));
    }
    Err(invalid(format!(
        "{what} must be JSON (plain objects, arrays, strings, finite numbers, booleans, null)"
    )))
}

fn is_plain_object(v: &JsValue) -> bool {
    let proto = Object::get_prototype_of(v);
    proto.is_null() || proto == Object::get_prototype_of(&Object::new())
}

/// A serializable value as the plain JS value `JSON.parse` makes of its JSON.
///
/// The host's one path between Rust values and JS values is JSON (serde_json, which the
/// HTTP client needs anyway): a second serde backend (serde-wasm-bindgen) monomorphised
/// every derived impl again (see bench/README.md, "Bundle size").
pub fn to_js_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    text_to_js(serde_json::to_string(v).map_err(|e| e.to_string()))
}

/// The non-generic rest of [`to_js_value`] (compiled once, not once per type).
fn text_to_js(text: Result<String, String>) -> Result<JsValue, Error> {
    let text = text.map_err(|e| {
        Error::new(
            monodit_core::ErrorCode::Internal,
            format!("encoding a value: {e}"),
        )
    })?;
    js_sys::JSON::parse(&text).map_err(|e| crate::errors::from_js(&e))
}

/// A JS value (an IndexedDB record) read into a Rust type (see [`super::read`]); None when
/// it is not JSON or has the wrong shape.
pub fn from_js_value<T: super::read::FromJson>(v: &JsValue) -> Option<T> {
    T::from_json(trusted_to_json(v, "a stored record").ok()?).ok()
}
