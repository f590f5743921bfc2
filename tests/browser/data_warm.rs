//! After a page reload: the buckets of the widgets a page mounts are warmed from the mirror in
//! one IndexedDB transaction, and a widget's first read waits for that instead of reading
//! again. Real IndexedDB, real server.
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::sync::Engine;
use monodit_core::api::Plan;
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

/// Counts the read-only transactions the page opens on the mirror's `documents` store from
/// now on (a wrapper around `IDBDatabase.prototype.transaction`); returns the reader.
fn count_document_reads() -> impl Fn() -> u32 {
    let install = js_sys::Function::new_no_args(
        r#"
        const proto = IDBDatabase.prototype;
        if (!proto.__monoditCounted) {
          const original = proto.transaction;
          proto.__monoditCounted = original;
          proto.transaction = function (stores, mode) {
            const names = typeof stores === "string" ? [stores] : Array.from(stores);
            if (names.includes("documents") && (mode || "readonly") === "readonly") {
              globalThis.__monoditDocReads = (globalThis.__monoditDocReads || 0) + 1;
            }
            return original.apply(this, arguments);
          };
        }
        globalThis.__monoditDocReads = 0;
        "#,
    );
    install.call0(&JsValue::NULL).unwrap();
    || {
        js_sys::Reflect::get(&js_sys::global(), &"__monoditDocReads".into())
            .unwrap()
            .as_f64()
            .unwrap_or(0.0) as u32
    }
}

#[wasm_bindgen_test]
async fn buckets_warmed_together_are_read_in_one_transaction_and_first_reads_wait_for_it() {
    let (api, _) = new_user(Plan::Pro).await;
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("warm{i}"))).collect();
    let engine = Engine::open(api.clone()).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        engine
            .doc_set(&doc_bucket(id), json!({ "n": i }))
            .await
            .unwrap();
    }
    engine.close();

    // The reload: a new engine, memory empty, the documents only in the mirror.
    let engine = Engine::open(api.clone()).await.unwrap();
    let never_written = unique("warm-none");
    let reads = count_document_reads();
    let gets_before = api.counters().document_gets.get();
    for id in ids.iter().chain([&never_written]) {
        engine.warm(id);
    }
    // A read made while the warm-up runs joins it.
    let first = engine.doc_get(&doc_bucket(&ids[0])).await.unwrap();
    assert_eq!((first.value, first.version), (json!({"n": 0}), 1));
    for (i, id) in ids.iter().enumerate() {
        let snap = engine.doc_get(&doc_bucket(id)).await.unwrap();
        assert_eq!((snap.value, snap.version), (json!({ "n": i }), 1));
    }
    assert_eq!(reads(), 1, "three warmed buckets, one transaction");
    assert_eq!(
        api.counters().document_gets.get(),
        gets_before,
        "warming asks the server nothing"
    );
    // A bucket the mirror does not hold is left to its first read (the server's answer).
    let none = engine.doc_get(&doc_bucket(&never_written)).await.unwrap();
    assert_eq!((none.value, none.version), (json!(null), 0));
    assert_eq!(api.counters().document_gets.get(), gets_before + 1);
    engine.close();
    // The other tests of this page see the browser's own method again.
    js_sys::Function::new_no_args(
        "const p = IDBDatabase.prototype; p.transaction = p.__monoditCounted; delete p.__monoditCounted;",
    )
    .call0(&JsValue::NULL)
    .unwrap();
}
