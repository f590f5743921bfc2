//! Without IndexedDB (private mode, blocked, disabled) the engine keeps working from memory,
//! against the real server, with a console warning.
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::sync::{Engine, EventKind};
use monodit_core::api::Plan;
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn without_indexeddb_the_engine_works_in_memory() {
    let (api, _) = new_user(Plan::Pro).await;
    let window: JsValue = web_sys::window().unwrap().into();
    let name = JsValue::from_str("indexedDB");
    // Hide IndexedDB the way a locked-down browser does: the global is missing. (On the
    // global object the attribute is an own accessor: keep its descriptor to restore it.)
    let original = js_sys::Object::get_own_property_descriptor(&window.clone().into(), &name);
    let desc = js_sys::Object::new();
    js_sys::Reflect::set(&desc, &"value".into(), &JsValue::UNDEFINED).unwrap();
    js_sys::Reflect::set(&desc, &"configurable".into(), &JsValue::TRUE).unwrap();
    js_sys::Object::define_property(&window.clone().into(), &name, &desc);
    let engine = Engine::open(api.clone()).await;
    // Restore before asserting anything, so a failure cannot leak into other tests.
    if original.is_object() {
        js_sys::Object::define_property(&window.clone().into(), &name, &original.into());
    } else {
        js_sys::Reflect::delete_property(&window.clone().into(), &name).unwrap();
    }
    assert!(js_sys::Reflect::get(&window, &name).unwrap().is_object());
    let engine = engine.unwrap();
    assert!(!engine.is_persistent());

    let id = unique("memory");
    let w = DocRecorder::on(&engine, &id);
    let snap = engine
        .doc_set(&doc_bucket(&id), json!({"text": "in memory"}))
        .await
        .unwrap();
    assert_eq!((snap.version, snap.pending), (1, false));
    assert_eq!(w.kinds(), vec![EventKind::Optimistic, EventKind::Confirmed]);
    let got = engine.doc_get(&doc_bucket(&id)).await.unwrap();
    assert_eq!(got.value, json!({"text": "in memory"}));

    engine
        .cache()
        .set("w", "k", JsValue::from_str("v"), None)
        .await
        .unwrap();
    assert_eq!(
        engine.cache().get("w", "k").await.unwrap(),
        JsValue::from_str("v")
    );
    engine.close();
}
