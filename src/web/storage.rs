//! `window.localStorage`, read through `Reflect` because merely reading the property throws
//! in opaque origins and some privacy modes: every helper here then does nothing.

use wasm_bindgen::{JsCast, JsValue};

/// `window.localStorage`, or `None` where it is unavailable.
fn local_storage() -> Option<JsValue> {
    let w = web_sys::window()?;
    js_sys::Reflect::get(&w, &JsValue::from_str("localStorage"))
        .ok()
        .filter(|s| s.is_object())
}

fn local_storage_call(method: &str, args: &[&str]) -> Option<JsValue> {
    let storage = local_storage()?;
    let f: js_sys::Function = js_sys::Reflect::get(&storage, &JsValue::from_str(method))
        .ok()?
        .dyn_into()
        .ok()?;
    let args: js_sys::Array = args.iter().map(|a| JsValue::from_str(a)).collect();
    f.apply(&storage, &args).ok()
}

/// The stored string of `key`; `None` when unset or when localStorage is unavailable.
pub fn local_storage_get(key: &str) -> Option<String> {
    local_storage_call("getItem", &[key])?.as_string()
}

/// Stores `value` under `key`; does nothing when localStorage is unavailable or full.
pub fn local_storage_set(key: &str, value: &str) {
    let _ = local_storage_call("setItem", &[key, value]);
}
