//! One suite over both stores of the local mirror (`src/mirror/`): IndexedDB, and the memory
//! store the engine falls back to when IndexedDB is unavailable. Each store must keep the
//! same rules (a miss for what was never written, one transaction per multi-store write,
//! outbox order by `seq`, cache entries per instance), so every check below runs on both.

use crate::data_support::unique;
use monodit_bridge::mirror::{
    AssetRecord, CacheRecord, DocRecord, Mirror, OutboxRecord, UploadRecord,
};
use monodit_core::api::{AssetInfo, Contract};
use monodit_core::buckets::Backend;
use monodit_core::outbox::{Condition, Settled};
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn contract() -> Contract {
    Contract {
        backend: Backend::D1Json,
        schema_id: "mirror.suite".into(),
        schema_version: 1,
    }
}

fn doc(bucket: &str, value: serde_json::Value, pending: bool) -> DocRecord {
    DocRecord {
        bucket_id: bucket.into(),
        contract: Some(contract()),
        confirmed_value: json!(null),
        confirmed_version: 0,
        value,
        pending,
        confirmed_known: true,
        settled: Settled::default(),
    }
}

fn write(id: &str, bucket: &str, seq: f64) -> OutboxRecord {
    OutboxRecord {
        mutation_id: id.into(),
        bucket_id: bucket.into(),
        seq,
        // An integer: IndexedDB keeps JS numbers, so a Rust float 2.0 comes back as 2.
        value: json!(seq as i64),
        contract: contract(),
        created_at: seq,
        base_version: Some(0),
        condition: Condition::Plain,
        after: None,
        sent_as: None,
    }
}

fn entry(instance: &str, key: &str, value: &str) -> CacheRecord {
    CacheRecord {
        instance_id: instance.into(),
        key: key.into(),
        value: JsValue::from_str(value),
        size: value.len() as f64,
        expires_at: None,
        last_used: 1.0,
    }
}

/// The rules every store keeps.
async fn suite(m: &Mirror) {
    // Documents: a miss until written, then exactly what was written.
    assert_eq!(m.get_doc("b1").await, None);
    let d = doc("b1", json!({"text": "hi"}), false);
    m.put_doc(&d).await.unwrap();
    assert_eq!(m.get_doc("b1").await, Some(d.clone()));

    // A set: document and outbox entries together; the outbox comes back ordered by seq.
    let pending = doc("b1", json!(2), true);
    let (w2, w1) = (write("m2", "b1", 2.0), write("m1", "b1", 1.0));
    m.write_sets(std::slice::from_ref(&pending), &[w2.clone(), w1.clone()])
        .await
        .unwrap();
    assert_eq!(m.get_doc("b1").await, Some(pending));
    assert_eq!(m.outbox().await, vec![w1.clone(), w2.clone()]);
    assert!(m.outbox_contains("m1").await);

    // Settling: the new document and the removal of its writes together.
    let mut settled = doc("b1", json!(1), true);
    settled.confirmed_value = json!(1);
    settled.confirmed_version = 1;
    settled.settled = Settled {
        seq: 1.0,
        version: 1,
    };
    m.write_settled(&settled, &["m1".to_string()])
        .await
        .unwrap();
    assert_eq!(m.get_doc("b1").await, Some(settled));
    assert!(!m.outbox_contains("m1").await);
    assert_eq!(m.outbox().await, vec![w2.clone()]);

    // A PUT whose outcome is unknown: its entries still queued are marked with the id it
    // carried (once: the first mark stays); settled ones are not brought back.
    m.mark_sent(&["m1".to_string(), "m2".to_string()], "m2")
        .await
        .unwrap();
    let marked = OutboxRecord {
        sent_as: Some("m2".into()),
        ..w2.clone()
    };
    assert_eq!(m.outbox().await, vec![marked.clone()]);
    m.mark_sent(&["m2".to_string()], "other").await.unwrap();
    assert_eq!(m.outbox().await, vec![marked]);
    m.delete_outbox(&["m2".to_string(), "never-written".to_string()])
        .await
        .unwrap();
    assert!(m.outbox().await.is_empty());

    // Asset lists keep every field, the URL's expiry included.
    assert_eq!(m.get_assets("pics").await, None);
    let list = AssetRecord {
        bucket_id: "pics".into(),
        version: 3,
        assets: vec![AssetInfo {
            object_key: "k".into(),
            name: "a.png".into(),
            size: 3,
            content_type: "image/png".into(),
            uploaded_at: 1,
            url: "http://127.0.0.1/v1/objects/k?exp=1&sig=0".into(),
            url_expires_at: Some(1000),
        }],
    };
    m.put_assets(&list).await.unwrap();
    assert_eq!(m.get_assets("pics").await, Some(list));

    // Pending uploads: by fingerprint, gone once deleted.
    let fp = UploadRecord::fingerprint("pics", "a.png", 3.0, 1.0, "image/png");
    assert_eq!(m.get_upload(&fp).await, None);
    let up = UploadRecord {
        fingerprint: fp.clone(),
        idempotency_key: "idem".into(),
        upload_id: Some("u1".into()),
        bucket_id: "pics".into(),
        name: "a.png".into(),
        size: 3.0,
        last_modified: 1.0,
        content_type: "image/png".into(),
        created_at: 1.0,
    };
    m.put_upload(&up).await.unwrap();
    assert_eq!(m.get_upload(&fp).await, Some(up));
    m.delete_upload(&fp).await.unwrap();
    assert_eq!(m.get_upload(&fp).await, None);

    // Cache entries are per instance; one write both puts and deletes.
    m.cache_write("i1", &[entry("i1", "a", "x"), entry("i1", "b", "y")], &[])
        .await
        .unwrap();
    m.cache_write("i2", &[entry("i2", "a", "other")], &[])
        .await
        .unwrap();
    m.cache_write("i1", &[entry("i1", "c", "z")], &["a".to_string()])
        .await
        .unwrap();
    assert!(m.cache_get("i1", "a").await.is_none());
    let b = m.cache_get("i1", "b").await.expect("i1/b");
    assert_eq!(b.value.as_string().as_deref(), Some("y"));
    assert_eq!(b.size, 1.0);
    let mut keys: Vec<String> = m
        .cache_entries("i1")
        .await
        .into_iter()
        .map(|r| r.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["b", "c"]);
    assert_eq!(
        m.cache_get("i2", "a")
            .await
            .and_then(|r| r.value.as_string()),
        Some("other".into())
    );
}

#[wasm_bindgen_test]
async fn the_memory_store_keeps_the_mirror_rules() {
    let m = Mirror::memory(&unique("mirror-memory"));
    assert!(!m.is_persistent());
    suite(&m).await;
}

#[wasm_bindgen_test]
async fn the_indexeddb_store_keeps_the_mirror_rules() {
    let m = Mirror::open(&unique("mirror-idb")).await;
    assert!(m.is_persistent(), "IndexedDB opens in headless Chromium");
    suite(&m).await;
    // And what it keeps survives a reopen (the memory store's does not, by design).
    let name = m.name().to_string();
    m.close();
    let user = name.trim_start_matches(monodit_bridge::mirror::DB_PREFIX);
    let again = Mirror::open(user).await;
    assert_eq!(
        again.get_doc("b1").await.map(|d| d.confirmed_version),
        Some(1)
    );
    again.close();
}
