//! `ctx.cache` on real IndexedDB in real Chromium: round trips, per-instance and per-user
//! isolation, TTL, LRU eviction under the size cap, Blob values. Needs no server.
#![cfg(target_arch = "wasm32")]

use crate::data_support::{sleep, unique};
use monodit_bridge::cache::{Cache, CACHE_CAP_BYTES};
use monodit_bridge::mirror::Mirror;
use monodit_core::ErrorCode;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

async fn open(user: &str) -> (Rc<Mirror>, Cache) {
    let mirror = Rc::new(Mirror::open(user).await);
    assert!(mirror.is_persistent());
    (mirror.clone(), Cache::new(mirror))
}

fn json(s: &str) -> JsValue {
    js_sys::JSON::parse(s).unwrap()
}

fn stringify(v: &JsValue) -> String {
    js_sys::JSON::stringify(v).unwrap().into()
}

/// `n` bytes as a Uint8Array (counted at its byte length).
fn bytes(n: u32) -> JsValue {
    js_sys::Uint8Array::new_with_length(n).into()
}

#[wasm_bindgen_test]
async fn round_trip_isolated_per_instance_and_user_and_persistent() {
    let user = unique("cache-user");
    let (mirror, cache) = open(&user).await;
    cache
        .set("w1", "k", json(r#"{"a":[1,2,"x"]}"#), None)
        .await
        .unwrap();
    cache.set("w1", "j", json("7"), None).await.unwrap();
    cache
        .set("w2", "k", json(r#""other""#), None)
        .await
        .unwrap();
    assert_eq!(
        stringify(&cache.get("w1", "k").await.unwrap()),
        r#"{"a":[1,2,"x"]}"#
    );
    assert_eq!(
        stringify(&cache.get("w2", "k").await.unwrap()),
        r#""other""#
    );
    assert!(cache.get("w1", "missing").await.unwrap().is_undefined());
    assert_eq!(cache.keys("w1").await.unwrap(), vec!["j", "k"]);

    // Survives closing and reopening the database.
    mirror.close();
    let (mirror, cache) = open(&user).await;
    assert_eq!(stringify(&cache.get("w1", "j").await.unwrap()), "7");
    assert!(cache.delete("w1", "j").await.unwrap());
    assert!(!cache.delete("w1", "j").await.unwrap());
    cache.clear("w1").await.unwrap();
    assert!(cache.keys("w1").await.unwrap().is_empty());
    assert_eq!(
        cache.keys("w2").await.unwrap(),
        vec!["k"],
        "clear is per instance"
    );
    mirror.close();

    // Another user's database never shows these entries.
    let (other, other_cache) = open(&unique("cache-other")).await;
    assert!(other_cache.get("w2", "k").await.unwrap().is_undefined());
    other.close();
}

#[wasm_bindgen_test]
async fn ttl_expires_entries() {
    let (mirror, cache) = open(&unique("cache-ttl")).await;
    // Margins, not timing: the short entry must outlive one IndexedDB round trip even on a
    // loaded CI machine (a 50 ms TTL once expired before the first read), and is read again
    // well after it expired.
    cache
        .set("w", "short", json("1"), Some(1_500.0))
        .await
        .unwrap();
    cache
        .set("w", "long", json("2"), Some(60_000.0))
        .await
        .unwrap();
    assert_eq!(stringify(&cache.get("w", "short").await.unwrap()), "1");
    sleep(2_000).await;
    assert!(cache.get("w", "short").await.unwrap().is_undefined());
    assert_eq!(cache.keys("w").await.unwrap(), vec!["long"]);
    assert_eq!(
        cache
            .set("w", "bad", json("1"), Some(-5.0))
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    mirror.close();
}

#[wasm_bindgen_test]
async fn least_recently_used_entries_are_evicted_at_the_cap() {
    let (mirror, cache) = open(&unique("cache-lru")).await;
    let two_mb = 2 * 1024 * 1024;
    cache.set("w", "a", bytes(two_mb), None).await.unwrap();
    sleep(5).await;
    cache.set("w", "b", bytes(two_mb), None).await.unwrap();
    sleep(5).await;
    // Reading `a` makes `b` the least recently used.
    assert!(!cache.get("w", "a").await.unwrap().is_undefined());
    sleep(5).await;
    cache.set("w", "c", bytes(two_mb), None).await.unwrap();
    assert_eq!(cache.keys("w").await.unwrap(), vec!["a", "c"]);
    assert!(cache.used_bytes("w").await <= CACHE_CAP_BYTES);
    // Other instances keep their own budget.
    cache.set("v", "x", bytes(two_mb), None).await.unwrap();
    assert_eq!(cache.keys("w").await.unwrap(), vec!["a", "c"]);
    // One value above the cap is refused outright.
    let err = cache
        .set("w", "huge", bytes(6 * 1024 * 1024), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert_eq!(cache.keys("w").await.unwrap(), vec!["a", "c"]);
    mirror.close();
}

#[wasm_bindgen_test]
async fn blobs_are_stored_as_blobs() {
    let user = unique("cache-blob");
    let (mirror, cache) = open(&user).await;
    let parts = js_sys::Array::of1(&JsValue::from_str("favicon bytes"));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("image/x-icon");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).unwrap();
    let obj = js_sys::Object::new();
    js_sys::Reflect::set(&obj, &"icon".into(), &blob).unwrap();
    cache.set("w", "fav", obj.into(), None).await.unwrap();
    mirror.close();

    let (mirror, cache) = open(&user).await;
    let got = cache.get("w", "fav").await.unwrap();
    let icon = js_sys::Reflect::get(&got, &"icon".into()).unwrap();
    let icon: web_sys::Blob = icon.dyn_into().expect("a Blob comes back");
    assert_eq!(icon.type_(), "image/x-icon");
    assert_eq!(icon.size(), 13.0);
    let text = JsFuture::from(icon.text()).await.unwrap();
    assert_eq!(text.as_string().unwrap(), "favicon bytes");
    // A function cannot be cloned: a clear error, nothing stored.
    let f = js_sys::Function::new_no_args("return 1");
    assert_eq!(
        cache.set("w", "fn", f.into(), None).await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    assert!(cache.get("w", "fn").await.unwrap().is_undefined());
    mirror.close();
}

#[wasm_bindgen_test]
async fn corrupt_cache_records_are_misses() {
    use monodit_bridge::mirror::{db_name, STORE_CACHE};
    use rexie::{Rexie, TransactionMode};
    let user = unique("cache-corrupt");
    let (mirror, cache) = open(&user).await;
    cache.set("w", "good", json("1"), None).await.unwrap();
    mirror.close();
    // Records of the wrong shape, as a buggy older build might have left them.
    let db = Rexie::builder(&db_name(&user)).build().await.unwrap();
    let tx = db
        .transaction(&[STORE_CACHE], TransactionMode::ReadWrite)
        .unwrap();
    let st = tx.store(STORE_CACHE).unwrap();
    st.put(
        &json(r#"{"instanceId":"w","key":"bad","value":1,"size":"big","lastUsed":null}"#),
        None,
    )
    .await
    .unwrap();
    st.put(&json(r#"{"instanceId":"w","key":"worse"}"#), None)
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    let (mirror, cache) = open(&user).await;
    assert!(cache.get("w", "bad").await.unwrap().is_undefined());
    assert!(cache.get("w", "worse").await.unwrap().is_undefined());
    assert_eq!(cache.keys("w").await.unwrap(), vec!["good"]);
    // Writing over a corrupt key repairs it.
    cache.set("w", "bad", json("2"), None).await.unwrap();
    assert_eq!(stringify(&cache.get("w", "bad").await.unwrap()), "2");
    mirror.close();
}

#[wasm_bindgen_test]
async fn one_size_estimate_with_the_port_and_deep_values_are_refused() {
    use monodit_bridge::cache::estimate_size;
    // The estimate the cache records is the one the port's decoder checks `cache.set` with
    // (`protocol::estimate_size`, which stops at its limit).
    let values = [
        bytes(1000),
        json(r#"{"a":[1,2,"xyz"],"b":null}"#),
        JsValue::from_str("hello"),
    ];
    for v in &values {
        let cached = estimate_size(v);
        let port = monodit_bridge::protocol::estimate_size(v, 1 << 20).unwrap();
        assert_eq!(cached, port as f64, "{}", stringify(v));
    }
    assert_eq!(estimate_size(&bytes(1000)), 1016.0);
    assert_eq!(estimate_size(&JsValue::from_str("hello")), 18.0);
    assert!(monodit_bridge::protocol::estimate_size(&bytes(1000), 1000).is_err());

    // A cyclic value is nested too deep: INVALID_ARGUMENT, as on the port, nothing stored.
    let (mirror, cache) = open(&unique("cache-deep")).await;
    let cyclic = js_sys::Object::new();
    js_sys::Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    let err = cache
        .set("w", "loop", cyclic.into(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(cache.get("w", "loop").await.unwrap().is_undefined());
    mirror.close();
}
