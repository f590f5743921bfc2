//! Proves the headless browser pipeline from a clean clone: real IndexedDB in real Chromium,
//! and a cross-origin request to the real backend that the test script started.
#![cfg(target_arch = "wasm32")]

use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

/// Set by scripts/with-server.sh at compile time.
fn server() -> &'static str {
    match option_env!("MONODIT_TEST_SERVER") {
        Some(url) => url,
        None => {
            panic!("MONODIT_TEST_SERVER is unset: run browser tests through scripts/with-server.sh")
        }
    }
}

#[wasm_bindgen_test]
async fn indexeddb_round_trip_survives_reopen() {
    let name = format!("monodit-pipeline-{}", js_sys::Math::random());
    let open = || async {
        Rexie::builder(&name)
            .version(1)
            .add_object_store(ObjectStore::new("kv"))
            .build()
            .await
            .expect("open IndexedDB")
    };

    let db = open().await;
    let value = js_sys::JSON::parse(r#"{"text":"héllo","n":[1,2,3]}"#).unwrap();
    let tx = db.transaction(&["kv"], TransactionMode::ReadWrite).unwrap();
    tx.store("kv")
        .unwrap()
        .put(&value, Some(&JsValue::from_str("doc")))
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    // A new connection reads what the first one committed.
    let db = open().await;
    let tx = db.transaction(&["kv"], TransactionMode::ReadOnly).unwrap();
    let got = tx
        .store("kv")
        .unwrap()
        .get(JsValue::from_str("doc"))
        .await
        .unwrap()
        .expect("value committed before close is there after reopen");
    assert_eq!(
        js_sys::JSON::stringify(&got).unwrap(),
        js_sys::JSON::stringify(&value).unwrap()
    );
    let missing = tx
        .store("kv")
        .unwrap()
        .get(JsValue::from_str("nope"))
        .await
        .unwrap();
    assert!(missing.is_none());
    tx.done().await.unwrap();
    db.close();
    Rexie::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn backend_answers_cross_origin() {
    let resp = gloo_net::http::Request::get(&format!("{}/v1/health", server()))
        .send()
        .await
        .expect("the backend answers (CORS allows the test page's origin)");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], true);

    // Storage routes need a bearer token: the error body carries a stable code.
    let resp = gloo_net::http::Request::get(&format!("{}/v1/me", server()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "UNAUTHENTICATED");
}
