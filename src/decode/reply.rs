//! The host's outbound port messages: call replies and events (shapes in the table at the
//! top of [`crate::protocol`]).

use crate::protocol::RequestId;
use js_sys::{Object, Reflect};
use monodit_core::Error;
use wasm_bindgen::JsValue;

/// `{id, ok: true, value}`.
pub fn ok_reply(id: RequestId, value: &JsValue) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"id".into(), &JsValue::from_f64(id));
    let _ = Reflect::set(&o, &"ok".into(), &JsValue::TRUE);
    let _ = Reflect::set(&o, &"value".into(), value);
    o.into()
}

/// `{id, ok: false, error: {code, message, detail?}}`.
pub fn error_reply(id: RequestId, err: &Error) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"id".into(), &JsValue::from_f64(id));
    let _ = Reflect::set(&o, &"ok".into(), &JsValue::FALSE);
    let _ = Reflect::set(&o, &"error".into(), &crate::errors::to_wire(err));
    o.into()
}

/// An event message `{event, subscription?, ...fields}`.
pub fn event(kind: &str, subscription: Option<f64>, fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"event".into(), &JsValue::from_str(kind));
    if let Some(s) = subscription {
        let _ = Reflect::set(&o, &"subscription".into(), &JsValue::from_f64(s));
    }
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}
