//! The sync engine against the real server in real Chromium: event kinds and order,
//! revalidation after another client writes, one batched meta request for many readers,
//! visibility/online re-checks, exact rollback with concurrent writes, corrupt mirror
//! records and cross-tab events (asset lists: data_assets.rs).
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::http::Api;
use monodit_bridge::mirror::{db_name, STORE_ASSETS, STORE_DOCUMENTS, STORE_OUTBOX};
use monodit_bridge::sync::{Engine, EventKind};
use monodit_core::api::{Contract, Plan, PutDocument};
use monodit_core::buckets::Backend;
use monodit_core::ErrorCode;
use rexie::{Rexie, TransactionMode};
use serde_json::json;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
async fn set_emits_optimistic_at_once_then_confirmed_to_every_subscriber() {
    let (api, _) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let id = unique("notes");
    let b = doc_bucket(&id);

    let first = engine.doc_get(&b).await.unwrap();
    assert_eq!(
        (first.value.clone(), first.version, first.pending),
        (json!(null), 0, false)
    );

    // Two widgets on the same bucket.
    let w1 = DocRecorder::on(&engine, &id);
    let w2 = DocRecorder::on(&engine, &id);

    let fut = engine.doc_set(&b, json!({"text": "hello"}));
    futures::pin_mut!(fut);
    // One poll: the optimistic event is out before anything was awaited on the network.
    assert!(futures::poll!(&mut fut).is_pending());
    for w in [&w1, &w2] {
        assert_eq!(w.kinds(), vec![EventKind::Optimistic]);
        let e = w.last().unwrap();
        assert_eq!(
            (e.value, e.version, e.pending),
            (json!({"text": "hello"}), 0, true)
        );
    }
    let snap = fut.await.unwrap();
    assert_eq!(
        (snap.value.clone(), snap.version, snap.pending),
        (json!({"text": "hello"}), 1, false)
    );
    for w in [&w1, &w2] {
        assert_eq!(w.kinds(), vec![EventKind::Optimistic, EventKind::Confirmed]);
        let e = w.last().unwrap();
        assert_eq!(
            (e.value, e.version, e.pending),
            (json!({"text": "hello"}), 1, false)
        );
        assert_eq!(e.bucket_id, id);
    }
    // The server has it, once.
    let meta = api.document_meta(&id).await.unwrap();
    assert_eq!(meta.version, 1);
    assert_eq!(engine.doc_get(&b).await.unwrap(), snap);
    assert_eq!(engine.pending_writes(), 0);
    engine.close();
}

#[wasm_bindgen_test]
async fn mutation_id_is_applied_once_by_the_server() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("dedupe");
    let put = PutDocument {
        value: json!(1),
        schema_id: notes().schema_id,
        schema_version: 1,
        mutation_id: Some("m-retry-1".into()),
        expected_version: None,
    };
    let a = api.put_document(&id, &put).await.unwrap();
    let b = api.put_document(&id, &put).await.unwrap();
    assert_eq!((a.version, b.version), (1, 1));
    assert_eq!(api.document_meta(&id).await.unwrap().version, 1);
}

#[wasm_bindgen_test]
async fn revalidates_after_another_client_writes() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("reval");
    let b = doc_bucket(&id);
    let engine = Engine::open(api.clone()).await.unwrap();
    engine.doc_set(&b, json!({"text": "mine"})).await.unwrap();
    let w = DocRecorder::on(&engine, &id);

    // Another client (plain HTTP, no engine) writes; a re-check fetches it.
    // The other client is the same user on another device.
    assert_eq!(remote_put(&api, &id, json!({"text": "theirs"})).await, 2);
    engine.recheck();
    wait_until("revalidated event", || w.has(EventKind::Revalidated)).await;
    let e = w.last().unwrap();
    assert_eq!(
        (e.kind, e.value, e.version, e.pending),
        (EventKind::Revalidated, json!({"text": "theirs"}), 2, false)
    );
    let snap = engine.doc_get(&b).await.unwrap();
    assert_eq!((snap.value, snap.version), (json!({"text": "theirs"}), 2));
    engine.close();

    // A new page: the IndexedDB copy answers at once (stale), then the background check
    // brings the newer server version in.
    assert_eq!(remote_put(&api, &id, json!({"text": "newest"})).await, 3);
    let engine = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&engine, &id);
    let gets_before = api.counters().document_gets.get();
    let cached = engine.doc_get(&b).await.unwrap();
    assert_eq!(
        (cached.value, cached.version),
        (json!({"text": "theirs"}), 2)
    );
    assert_eq!(
        api.counters().document_gets.get(),
        gets_before,
        "cached answer needs no GET"
    );
    wait_until("revalidated after cached read", || {
        w.has(EventKind::Revalidated)
    })
    .await;
    let e = w.last().unwrap();
    assert_eq!((e.value, e.version), (json!({"text": "newest"}), 3));
    engine.close();
}

#[wasm_bindgen_test]
async fn many_readers_of_many_buckets_cause_one_meta_request() {
    let (api, _) = new_user(Plan::Pro).await;
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("batch{i}"))).collect();
    let engine = Engine::open(api.clone()).await.unwrap();
    for id in &ids {
        engine
            .doc_set(&doc_bucket(id), json!({"id": id}))
            .await
            .unwrap();
    }
    engine.close();

    // A reloaded page with 10 widgets on each of 3 buckets, all mounting at once.
    let engine = Engine::open(api.clone()).await.unwrap();
    let before_counter = api.counters().meta.get();
    let before_timing = resource_requests("/v1/meta");
    let buckets: Vec<_> = ids.iter().map(|id| doc_bucket(id)).collect();
    let reads = (0..10).flat_map(|_| buckets.iter().map(|b| engine.doc_get(b)));
    let answers = futures::future::join_all(reads).await;
    for (i, a) in answers.into_iter().enumerate() {
        let a = a.unwrap();
        assert_eq!(a.value, json!({"id": ids[i % 3]}));
        assert_eq!(a.version, 1);
    }
    wait_until("the batched meta request", || {
        api.counters().meta.get() > before_counter
    })
    .await;
    wait_until("the browser saw it", || {
        resource_requests("/v1/meta") > before_timing
    })
    .await;
    sleep(300).await; // anything else queued would have gone out by now
    assert_eq!(
        api.counters().meta.get() - before_counter,
        1,
        "one POST /v1/meta for 30 reads"
    );
    assert_eq!(
        resource_requests("/v1/meta") - before_timing,
        1,
        "the browser made exactly one"
    );
    assert_eq!(
        api.counters().document_gets.get(),
        0,
        "nothing changed: no document fetched"
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn visibility_and_online_events_recheck_throttled() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("focus");
    let b = doc_bucket(&id);
    let engine = Engine::open(api.clone()).await.unwrap();
    // A window no stalled test machine can outlast: "throttled" below never depends on timing.
    engine.set_recheck_throttle_ms(600_000.0);
    engine.doc_set(&b, json!("v1")).await.unwrap();
    let w = DocRecorder::on(&engine, &id);
    remote_put(&api, &id, json!("v2")).await;

    let document = web_sys::window().unwrap().document().unwrap();
    assert_eq!(
        document.visibility_state(),
        web_sys::VisibilityState::Visible
    );
    let meta_before = api.counters().meta.get();
    if document.has_focus().unwrap() {
        // Focus while the page already had it (e.g. coming back from one of its own
        // iframes) is not a reason to re-check.
        web_sys::window()
            .unwrap()
            .dispatch_event(&web_sys::Event::new("focus").unwrap())
            .unwrap();
        sleep(100).await;
        assert_eq!(
            api.counters().meta.get(),
            meta_before,
            "inner focus ignored"
        );
    }
    document
        .dispatch_event(&web_sys::Event::new("visibilitychange").unwrap())
        .unwrap();
    wait_until("revalidated after visibilitychange", || {
        w.has(EventKind::Revalidated)
    })
    .await;
    assert_eq!(w.last().unwrap().value, json!("v2"));
    assert_eq!(api.counters().meta.get() - meta_before, 1);

    // Within the throttle window another trigger (online) does not re-check.
    remote_put(&api, &id, json!("v3")).await;
    w.clear();
    web_sys::window()
        .unwrap()
        .dispatch_event(&web_sys::Event::new("online").unwrap())
        .unwrap();
    sleep(300).await;
    assert_eq!(api.counters().meta.get() - meta_before, 1, "throttled");
    assert!(w.events().is_empty());

    // An explicit re-check is not throttled.
    engine.recheck();
    wait_until("revalidated after recheck", || {
        w.has(EventKind::Revalidated)
    })
    .await;
    assert_eq!(w.last().unwrap().value, json!("v3"));
    engine.close();
}

#[wasm_bindgen_test]
async fn permanent_failure_rolls_back_exactly_with_concurrent_sets() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("rollback");
    let good = doc_bucket(&id);
    // Same bucket, another contract: the server refuses with INCOMPATIBLE_BUCKET (permanent).
    let bad = monodit_bridge::sync::BucketRef {
        bucket_id: id.clone(),
        contract: Contract {
            backend: Backend::D1Json,
            schema_id: "notes.plaintext".into(),
            schema_version: 2,
        },
    };
    let engine = Engine::open(api.clone()).await.unwrap();
    engine.doc_set(&good, json!({"n": 1})).await.unwrap();
    let w = DocRecorder::on(&engine, &id);

    // B ok, C fails, D ok, all in flight together: C's failure must not hide D.
    let (b, c, d) = futures::join!(
        engine.doc_set(&good, json!({"n": 2})),
        engine.doc_set(&bad, json!({"n": 3})),
        engine.doc_set(&good, json!({"n": 4})),
    );
    assert_eq!(b.unwrap().version, 2);
    assert_eq!(c.unwrap_err().code, ErrorCode::IncompatibleBucket);
    let d = d.unwrap();
    assert_eq!(
        (d.value.clone(), d.version, d.pending),
        (json!({"n": 4}), 3, false)
    );
    let got: Vec<_> = w
        .events()
        .into_iter()
        .map(|e| (e.kind, e.value, e.version, e.pending))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Optimistic, json!({"n": 2}), 1, true),
            (EventKind::Optimistic, json!({"n": 3}), 1, true),
            (EventKind::Optimistic, json!({"n": 4}), 1, true),
            (EventKind::Confirmed, json!({"n": 4}), 2, true),
            (EventKind::Rollback, json!({"n": 4}), 2, true),
            (EventKind::Confirmed, json!({"n": 4}), 3, false),
        ]
    );

    // The newest write fails: the bucket shows the exact confirmed value again.
    w.clear();
    let (e, f) = futures::join!(
        engine.doc_set(&good, json!({"n": 5})),
        engine.doc_set(&bad, json!({"n": 6})),
    );
    assert_eq!(e.unwrap().version, 4);
    assert_eq!(f.unwrap_err().code, ErrorCode::IncompatibleBucket);
    let last = w.last().unwrap();
    assert_eq!(
        (last.kind, last.value, last.version, last.pending),
        (EventKind::Rollback, json!({"n": 5}), 4, false)
    );
    let snap = engine.doc_get(&good).await.unwrap();
    assert_eq!(
        (snap.value, snap.version, snap.pending),
        (json!({"n": 5}), 4, false)
    );
    assert_eq!(engine.pending_writes(), 0);
    engine.close();

    // Nothing of the failed writes is left in the durable outbox or on the server.
    let engine = Engine::open(api.clone()).await.unwrap();
    assert_eq!(engine.pending_writes(), 0);
    assert_eq!(api.document_meta(&id).await.unwrap().version, 4);
    engine.close();
}

#[wasm_bindgen_test]
async fn plan_required_rolls_back_to_the_previous_value() {
    let (api, _) = new_user(Plan::Free).await;
    let id = unique("free");
    let engine = Engine::open(api).await.unwrap();
    let w = DocRecorder::on(&engine, &id);
    let err = engine
        .doc_set(&doc_bucket(&id), json!({"text": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PlanRequired);
    let got = w.shown();
    assert_eq!(
        got,
        vec![
            (EventKind::Optimistic, json!({"text": "nope"}), true),
            (EventKind::Rollback, json!(null), false),
        ]
    );
    assert_eq!(engine.pending_writes(), 0);
    engine.close();
}

/// QUOTA_EXCEEDED: the server refuses, the optimistic value is rolled back to the
/// exact confirmed one, and the promise rejects with the code (limit lowered by the dev route).
#[wasm_bindgen_test]
async fn quota_exceeded_rolls_back_to_the_confirmed_value() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("quota");
    let engine = Engine::open(api.clone()).await.unwrap();
    let first = engine
        .doc_set(&doc_bucket(&id), json!({"text": "fits"}))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let me = api
        .dev_set_plan_limit(Plan::Pro, 0, Some(64))
        .await
        .unwrap();
    assert_eq!(me.limit_bytes, 64);
    let w = DocRecorder::on(&engine, &id);
    let err = engine
        .doc_set(&doc_bucket(&id), json!({"text": "x".repeat(200)}))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    let got = w.shown();
    assert_eq!(
        got,
        vec![
            (
                EventKind::Optimistic,
                json!({"text": "x".repeat(200)}),
                true
            ),
            (EventKind::Rollback, json!({"text": "fits"}), false),
        ]
    );
    assert_eq!(engine.pending_writes(), 0);
    // The mirror and the server both still hold the confirmed value.
    let now = engine.doc_get(&doc_bucket(&id)).await.unwrap();
    assert_eq!(now.value, json!({"text": "fits"}));
    assert_eq!(now.version, 1);
    engine.close();
}

#[wasm_bindgen_test]
async fn oversized_document_is_rejected_before_anything_is_shown() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("big");
    let engine = Engine::open(api).await.unwrap();
    let w = DocRecorder::on(&engine, &id);
    let big = json!({"text": "x".repeat(1024 * 1024 + 1)});
    let err = engine.doc_set(&doc_bucket(&id), big).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert!(w.events().is_empty());
    // The bound is the JSON text's exact length: `{"text":"…"}` is 11 bytes around the text.
    let limit = monodit_core::api::MAX_DOCUMENT_BYTES as usize;
    let over = json!({"text": "x".repeat(limit - 10)});
    let err = engine.doc_set(&doc_bucket(&id), over).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert_eq!(err.detail.as_ref().unwrap()["size"], json!(limit + 1));
    assert!(w.events().is_empty());
    let at_limit = json!({"text": "x".repeat(limit - 11)});
    let snap = engine.doc_set(&doc_bucket(&id), at_limit).await.unwrap();
    assert_eq!(snap.version, 1, "exactly the limit is stored");
    engine.close();
}

#[wasm_bindgen_test]
async fn corrupt_indexeddb_records_are_cache_misses() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("corrupt");
    let assets_id = unique("corrupt-assets");
    remote_put(&api, &id, json!({"text": "server truth"})).await;
    // Create the mirror's schema, then damage it as a buggy older build or a user might.
    Engine::open(api.clone()).await.unwrap().close();
    let db = Rexie::builder(&db_name(&user)).build().await.unwrap();
    let tx = db
        .transaction(
            &[STORE_DOCUMENTS, STORE_OUTBOX, STORE_ASSETS],
            TransactionMode::ReadWrite,
        )
        .unwrap();
    let garbage = |s: &str| js_sys::JSON::parse(s).unwrap();
    tx.store(STORE_DOCUMENTS)
        .unwrap()
        .put(
            &garbage(&format!(
                r#"{{"bucketId":"{id}","confirmedVersion":"seven","value":5}}"#
            )),
            None,
        )
        .await
        .unwrap();
    tx.store(STORE_OUTBOX)
        .unwrap()
        .put(&garbage(r#"{"mutationId":"broken","seq":"x"}"#), None)
        .await
        .unwrap();
    tx.store(STORE_ASSETS)
        .unwrap()
        .put(
            &garbage(&format!(
                r#"{{"bucketId":"{assets_id}","assets":"not a list"}}"#
            )),
            None,
        )
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    let engine = Engine::open(api.clone()).await.unwrap();
    assert_eq!(
        engine.pending_writes(),
        0,
        "a corrupt outbox entry is skipped"
    );
    let snap = engine.doc_get(&doc_bucket(&id)).await.unwrap();
    assert_eq!(
        (snap.value, snap.version),
        (json!({"text": "server truth"}), 1)
    );
    let list = engine.assets_list(&asset_bucket(&assets_id)).await.unwrap();
    assert!(list.is_empty());
    engine.close();
}

#[wasm_bindgen_test]
async fn other_tabs_get_optimistic_and_confirmed_events() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("tabs");
    // Two engines of one user stand in for two tabs: they talk over the BroadcastChannel.
    let tab_a = Engine::open(api.clone()).await.unwrap();
    let tab_b = Engine::open_with_user(Api::new(server(), "unused-token"), &user).await;
    let w = DocRecorder::on(&tab_b, &id);
    tab_a
        .doc_set(&doc_bucket(&id), json!({"text": "from a"}))
        .await
        .unwrap();
    wait_until("confirmed in the other tab", || w.has(EventKind::Confirmed)).await;
    let got: Vec<_> = w.events().into_iter().map(|e| (e.kind, e.value)).collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Optimistic, json!({"text": "from a"})),
            (EventKind::Confirmed, json!({"text": "from a"})),
        ]
    );
    assert_eq!(w.last().unwrap().version, 1);
    tab_a.close();
    tab_b.close();
}

#[wasm_bindgen_test]
async fn reading_a_bucket_with_another_contract_is_incompatible() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("contract");
    remote_put(&api, &id, json!("notes")).await;
    let engine = Engine::open(api).await.unwrap();
    let other = monodit_bridge::sync::BucketRef {
        bucket_id: id.clone(),
        contract: Contract {
            backend: Backend::D1Json,
            schema_id: "todo.list".into(),
            schema_version: 1,
        },
    };
    // From the server, then again from memory.
    for _ in 0..2 {
        let err = engine.doc_get(&other).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompatibleBucket);
    }
    assert_eq!(
        engine.doc_get(&doc_bucket(&id)).await.unwrap().value,
        json!("notes")
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn quick_sets_to_one_bucket_coalesce_into_few_requests() {
    let (api, _) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let id = unique("burst");
    let b = doc_bucket(&id);
    let w = DocRecorder::on(&engine, &id);
    let puts = api.counters().document_puts.get();
    let sets = (0..200).map(|i| engine.doc_set(&b, json!({ "n": i })));
    let answers = futures::future::join_all(sets).await;
    let sent = api.counters().document_puts.get() - puts;
    assert!(
        sent < 20,
        "200 quick sets went out as {sent} PUTs (coalesced)"
    );
    // Every set() is confirmed, each by a snapshot that already includes it.
    let meta = api.document_meta(&id).await.unwrap();
    let last = answers.last().unwrap().as_ref().unwrap();
    assert_eq!(
        (last.value.clone(), last.version, last.pending),
        (json!({"n": 199}), meta.version, false)
    );
    for a in &answers {
        let v = a.as_ref().expect("confirmed").version;
        assert!((1..=meta.version).contains(&v), "version {v}");
    }
    assert_eq!(meta.version, sent, "one server version per PUT, none lost");
    let kinds = w.kinds();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::Optimistic)
            .count(),
        200
    );
    let e = w.last().unwrap();
    assert_eq!(
        (e.kind, e.value, e.pending),
        (EventKind::Confirmed, json!({"n": 199}), false)
    );
    assert_eq!(engine.pending_writes(), 0);
    engine.close();
    // Nothing left in the durable outbox.
    let again = Engine::open(api.clone()).await.unwrap();
    assert_eq!(again.pending_writes(), 0);
    again.close();
}

#[wasm_bindgen_test]
async fn a_refused_write_among_coalesced_ones_rolls_back_alone() {
    let (api, _) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let id = unique("burst-quota");
    let b = doc_bucket(&id);
    engine.doc_set(&b, json!({"n": 0})).await.unwrap();
    api.dev_set_plan_limit(Plan::Pro, 0, Some(1000))
        .await
        .expect("dev limit override");
    let w = DocRecorder::on(&engine, &id);
    let big = json!({ "text": "x".repeat(2000) });
    let (one, two, three) = futures::join!(
        engine.doc_set(&b, json!({"n": 1})),
        engine.doc_set(&b, json!({"n": 2})),
        engine.doc_set(&b, big),
    );
    assert!(one.unwrap().version >= 2, "confirmed");
    let two = two.unwrap();
    assert_eq!(three.unwrap_err().code, ErrorCode::QuotaExceeded);
    let meta = api.document_meta(&id).await.unwrap();
    assert_eq!(two.version, meta.version);
    let e = w.last().unwrap();
    assert_eq!(
        (e.kind, e.value, e.version, e.pending),
        (EventKind::Rollback, json!({"n": 2}), meta.version, false)
    );
    assert_eq!(
        engine.doc_get(&b).await.unwrap().value,
        json!({"n": 2}),
        "the confirmed value is the last accepted write"
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn a_widgets_get_follows_every_change_and_never_shares_a_changeable_value() {
    let (api, _) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let id = unique("getjs");
    let b = doc_bucket(&id);
    let js = |v: &wasm_bindgen::JsValue| js_sys::JSON::stringify(v).unwrap().as_string().unwrap();
    let first = engine.doc_get_js(&b).await.unwrap();
    assert_eq!((js(&first.value), first.version), ("null".into(), 0));
    engine.doc_set(&b, json!({"n": 1})).await.unwrap();
    let one = engine.doc_get_js(&b).await.unwrap();
    assert_eq!(
        (js(&one.value), one.version, one.pending),
        (r#"{"n":1}"#.into(), 1, false)
    );
    // Unchanged: the same JS value again (nothing encoded).
    let again = engine.doc_get_js(&b).await.unwrap();
    assert!(js_sys::Object::is(&one.value, &again.value));
    // An optimistic write shows at once, and the head moves with it.
    let write = engine.doc_set(&b, json!({"n": 2}));
    futures::pin_mut!(write);
    assert!(futures::poll!(write.as_mut()).is_pending());
    let two = engine.doc_get_js(&b).await.unwrap();
    assert_eq!((js(&two.value), two.pending), (r#"{"n":2}"#.into(), true));
    assert_ne!(two.head, one.head);
    write.await.unwrap();
    // Back to a value equal to an earlier one: its own answer, equal in content.
    engine.doc_set(&b, json!({"n": 1})).await.unwrap();
    let back = engine.doc_get_js(&b).await.unwrap();
    assert_eq!((js(&back.value), back.version), (r#"{"n":1}"#.into(), 3));
    // Another client's write, revalidated: the next get shows it.
    assert_eq!(remote_put(&api, &id, json!({"n": "theirs"})).await, 4);
    let w = DocRecorder::on(&engine, &id);
    engine.recheck();
    wait_until("revalidated event", || w.has(EventKind::Revalidated)).await;
    let theirs = engine.doc_get_js(&b).await.unwrap();
    assert_eq!(
        (js(&theirs.value), theirs.version),
        (r#"{"n":"theirs"}"#.into(), 4)
    );
    // The plain snapshot agrees.
    let snap = engine.doc_get(&b).await.unwrap();
    assert_eq!((snap.value, snap.version), (json!({"n": "theirs"}), 4));
    engine.close();
}
