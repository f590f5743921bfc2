//! Documents through the host: events to other widgets, re-checks, contracts, config moves, quota, mirrored loads.

use super::*;

#[wasm_bindgen_test]
async fn every_event_kind_reaches_a_second_widget_on_the_same_bucket() {
    let (host, api) = setup().await;
    let (log, _off) = host_log(&host);
    let shared = r#"{"storageNamespace": "team-notes"}"#;
    let (_ha, a) = mount(&host, "note-a", NOTES, shared).await;
    let (_hb, b) = mount(&host, "note-b", NOTES, shared).await;
    let (cb, events) = recorder();
    let _unsub = b.store().subscribe(JsValue::NULL, cb, None);
    // A round trip on the same port: the host has registered the subscription by then
    // (requests on one port are routed in order).
    ok(b.store().get(None)).await;

    // optimistic (pending) then confirmed, on B, for A's write.
    let written = ok(a.store().set(json(r#"{"text": "hi"}"#), None)).await;
    assert_eq!(get(&written, "pending"), JsValue::FALSE);
    assert_eq!(
        get(&written, "bucket").as_string().as_deref(),
        Some("team-notes")
    );
    let (_, m) = wait_kind(&events, "optimistic", r#"{"text":"hi"}"#).await;
    assert_eq!(get(&m, "pending"), JsValue::TRUE);
    assert_eq!(get(&m, "bucket").as_string().as_deref(), Some("team-notes"));
    let (_, m) = wait_kind(&events, "confirmed", r#"{"text":"hi"}"#).await;
    assert_eq!(get(&m, "pending"), JsValue::FALSE);
    let v1 = get(&m, "version").as_f64().unwrap();
    assert!(v1 >= 1.0);
    let k = kinds(&events);
    let first_opt = k.iter().position(|x| x == "optimistic").unwrap();
    let first_conf = k.iter().position(|x| x == "confirmed").unwrap();
    assert!(first_opt < first_conf, "optimistic before confirmed: {k:?}");
    assert_eq!(
        stringify(&ok(b.store().get(None)).await),
        r#"{"text":"hi"}"#
    );

    // revalidated: another device writes; a re-check brings it to B.
    api.put_document(
        "team-notes",
        &PutDocument {
            value: serde_json::json!({"text": "remote"}),
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
            mutation_id: None,
            expected_version: None,
        },
    )
    .await
    .expect("remote write");
    host.engine().recheck();
    let (_, m) = wait_kind(&events, "revalidated", r#"{"text":"remote"}"#).await;
    assert!(get(&m, "version").as_f64().unwrap() > v1);

    // rollback: a permanent failure (the plan loses storage) restores the confirmed value.
    api.dev_set_plan(Plan::Free, 0).await.expect("downgrade");
    let err = rejection(a.store().set(json(r#"{"text": "nope"}"#), None)).await;
    assert_eq!(code(&err), "PLAN_REQUIRED");
    wait_kind(&events, "optimistic", r#"{"text":"nope"}"#).await;
    wait_kind(&events, "rollback", r#"{"text":"remote"}"#).await;

    // The host's event log saw each kind, tagged with instance ids.
    let entries = log.borrow().clone();
    for kind in ["optimistic", "confirmed", "revalidated", "rollback"] {
        for inst in ["note-a", "note-b"] {
            assert!(
                entries
                    .iter()
                    .any(|e| get(e, "kind").as_string().as_deref() == Some(kind)
                        && get(e, "instanceId").as_string().as_deref() == Some(inst)),
                "event log has {kind} for {inst}"
            );
        }
    }
}

#[wasm_bindgen_test]
async fn first_recheck_after_mount_is_one_request_for_many_widgets() {
    let (host, api) = setup().await;
    // Half the widgets' documents exist on the server, half were never written.
    for i in 0..3 {
        api.put_document(
            &format!("mixed-{i}"),
            &PutDocument {
                value: serde_json::json!({"n": i}),
                schema_id: "mixed.settings".into(),
                schema_version: 1,
                mutation_id: None,
                expected_version: None,
            },
        )
        .await
        .expect("remote write");
    }
    let mut widgets = Vec::new();
    for i in 0..6 {
        let (h, ctx) = mount(&host, &format!("mixed-{i}"), MIXED, "{}").await;
        ok(ctx.store().get(None)).await;
        widgets.push((h, ctx));
    }
    // Widget 0 lists its (never created) asset bucket, widget 1 only subscribes to its own,
    // the others never touch ctx.assets, though another device filled widget 2's bucket.
    assert_eq!(stringify(&ok(widgets[0].1.assets().list()).await), "[]");
    let (cb, _events) = recorder();
    let _unsub = widgets[1].1.assets().subscribe(cb, None);
    ok(widgets[1].1.store().get(None)).await; // same port: the subscription is registered
    let contract = monodit_core::api::Contract {
        backend: monodit_core::buckets::Backend::R2Assets,
        schema_id: "mixed.files".into(),
        schema_version: 1,
    };
    let parts = Array::of1(&JsValue::from_str("hello"));
    let blob = web_sys::Blob::new_with_str_sequence(&parts).unwrap();
    api.upload_asset("mixed-2", &contract, &blob, "a.txt", |_, _| {})
        .await
        .expect("another device uploads");
    sleep(300).await; // the reads' own background meta check has gone out

    let (total, meta) = (api.counters().total.get(), api.counters().meta.get());
    host.engine().recheck();
    wait_until("the re-check's meta request", 10_000, || {
        api.counters().meta.get() > meta
    })
    .await;
    sleep(500).await; // any follow-up fetch would have started by now
    assert_eq!(
        api.counters().total.get() - total,
        1,
        "nothing changed: one POST /v1/meta, no document or asset-list fetch"
    );
}

#[wasm_bindgen_test]
async fn contract_violations_are_refused() {
    let (host, _api) = setup().await;
    // A basic widget declares no binding: no store, no assets.
    let (_h, clock) = mount(&host, "clock-1", BASIC, "{}").await;
    assert_eq!(
        code(&rejection(clock.store().get(None)).await),
        "NO_BINDING"
    );
    assert_eq!(
        code(&rejection(clock.store().set(json("1"), None)).await),
        "NO_BINDING"
    );
    assert_eq!(code(&rejection(clock.assets().list()).await), "NO_BINDING");
    // A notes widget has no r2-assets binding.
    let (_h, notes) = mount(&host, "note-1", NOTES, "{}").await;
    assert_eq!(code(&rejection(notes.assets().list()).await), "NO_BINDING");
    assert_eq!(
        code(&rejection(notes.binding("nope".into()).store().get(None)).await),
        "NO_BINDING"
    );

    // An explicit namespace: fine for a new or compatible bucket...
    ok(notes
        .store()
        .set(json(r#"{"text": "mine"}"#), Some("ns-x".into())))
    .await;
    // ...refused for a bucket created with another schema, before anything is shown.
    let (_h, todo) = mount(&host, "todo-1", TODO, "{}").await;
    let (cb, events) = recorder();
    let _u = todo.store().subscribe("ns-y".into(), cb, None);
    // One shape from every path (docs/ERRORS.md): `data` is {existing, wanted}.
    let incompatible = r#"{"existing":{"backend":"d1-json","schemaId":"notes.plaintext","schemaVersion":1},"wanted":{"backend":"d1-json","schemaId":"todo.list","schemaVersion":1}}"#;
    let err = rejection(todo.store().get(Some("ns-x".into()))).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    assert_eq!(stringify(&get(&err, "data")), incompatible);
    let err = rejection(todo.store().set(json("[]"), Some("ns-x".into()))).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    assert_eq!(stringify(&get(&err, "data")), incompatible);
    let (fail, failures) = recorder();
    let _u2 = todo.store().subscribe("ns-x".into(), cb_noop(), Some(fail));
    wait_until("the subscribe failure", 5000, || {
        !failures.borrow().is_empty()
    })
    .await;
    assert_eq!(code(&failures.borrow()[0].0), "INCOMPATIBLE_BUCKET");
    // The notes bucket is untouched.
    assert_eq!(
        stringify(&ok(notes.store().get(Some("ns-x".into()))).await),
        r#"{"text":"mine"}"#
    );
    assert!(events.borrow().is_empty());

    // Relinking to an incompatible bucket is refused too; to a new one it works.
    let err = rejection(host.relink("todo-1".into(), "primary".into(), "ns-x".into())).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    assert_eq!(stringify(&get(&err, "data")), incompatible);
    let config = ok(host.relink("todo-1".into(), "primary".into(), "todo-shared".into())).await;
    assert_eq!(
        get(&config, "storageNamespace").as_string().as_deref(),
        Some("todo-shared")
    );

    // Invalid manifests are refused at mount with every problem listed.
    let ch = web_sys::MessageChannel::new().unwrap();
    let bad = r#"{"id": "Bad Id", "storage": {"bindings": [{"key": "k", "backend": "d1-json"}]}}"#;
    let err = rejection(host.mount_port(ch.port1(), mount_options("bad-1", bad, "{}"))).await;
    assert_eq!(code(&err), "INVALID_MANIFEST");
    assert!(Array::is_array(&get(&err, "data")));
    assert!(
        Array::from(&get(&err, "data")).length() >= 2,
        "{}",
        stringify(&get(&err, "data"))
    );
}

#[wasm_bindgen_test]
async fn config_changes_reach_the_widget_and_rebind_subscriptions() {
    let (host, _api) = setup().await;
    let (handle, a) = mount(&host, "note-a", NOTES, r#"{"storageNamespace": "one"}"#).await;
    let (_h1, on_one) = mount(&host, "note-1", NOTES, r#"{"storageNamespace": "one"}"#).await;
    let (_h2, on_two) = mount(&host, "note-2", NOTES, r#"{"storageNamespace": "two"}"#).await;
    let (cb, events) = recorder();
    let _u = a.store().subscribe(JsValue::NULL, cb, None);
    let (ccb, configs) = recorder();
    let _off = a.on_config_change(ccb);
    ok(a.store().get(None)).await; // the subscription is registered (same-port order)

    ok(on_one.store().set(json(r#""first""#), None)).await;
    wait_kind(&events, "confirmed", r#""first""#).await;

    ok(method(&handle, "setConfig")
        .call1(&handle, &json(r#"{"storageNamespace": "two"}"#))
        .unwrap()
        .unchecked_into::<js_sys::Promise>())
    .await;
    wait_until("onConfigChange", 5000, || !configs.borrow().is_empty()).await;
    assert_eq!(
        get(&configs.borrow()[0].0, "storageNamespace")
            .as_string()
            .as_deref(),
        Some("two")
    );
    assert_eq!(
        get(&a.config(), "storageNamespace").as_string().as_deref(),
        Some("two")
    );
    // Reads follow the new config at once.
    assert!(ok(a.store().get(None)).await.is_null());
    // A config whose bucket id is invalid is refused; the old config stays.
    let bad = method(&handle, "setConfig")
        .call1(
            &handle,
            &json(r#"{"storageNamespace": "no spaces allowed"}"#),
        )
        .unwrap()
        .unchecked_into::<js_sys::Promise>();
    assert_eq!(code(&rejection(bad).await), "INVALID_ARGUMENT");
    assert_eq!(
        get(&get(&handle, "config"), "storageNamespace")
            .as_string()
            .as_deref(),
        Some("two")
    );

    let before = events.borrow().len();
    ok(on_one.store().set(json(r#""old bucket""#), None)).await;
    ok(on_two.store().set(json(r#""new bucket""#), None)).await;
    let (_, m) = wait_kind(&events, "confirmed", r#""new bucket""#).await;
    assert_eq!(get(&m, "bucket").as_string().as_deref(), Some("two"));
    assert!(
        events.borrow()[before..]
            .iter()
            .all(|(_, m)| get(m, "bucket").as_string().as_deref() == Some("two")),
        "no events from the old bucket after re-binding"
    );
}

#[wasm_bindgen_test]
async fn a_subscriber_is_shown_the_new_bucket_when_its_binding_moves() {
    let (host, _api) = setup().await;
    let (_hs, shared) = mount(&host, "note-s", NOTES, r#"{"storageNamespace": "team"}"#).await;
    ok(shared.store().set(json(r#"{"text": "team doc"}"#), None)).await;
    let (_hn, n) = mount(&host, "note-n", NOTES, "{}").await;
    ok(n.store().set(json(r#"{"text": "my own doc"}"#), None)).await;
    let (cb, events) = recorder();
    let _u = n.store().subscribe(JsValue::NULL, cb, None);
    ok(n.store().get(None)).await; // the subscription is registered (same-port order)

    // Re-linked to the team bucket: the subscriber gets its document, with no write anywhere.
    ok(host.relink("note-n".into(), "primary".into(), "team".into())).await;
    let (_, m) = wait_kind(&events, "revalidated", r#"{"text":"team doc"}"#).await;
    assert_eq!(get(&m, "bucket").as_string().as_deref(), Some("team"));

    // The team bucket is deleted: it falls back to its isolated bucket and shows that one.
    ok(host.delete_bucket("d1-json".into(), "team".into())).await;
    let (_, m) = wait_kind(&events, "revalidated", r#"{"text":"my own doc"}"#).await;
    assert_eq!(get(&m, "bucket").as_string().as_deref(), Some("note-n"));

    // Asset subscriptions follow their config key the same way.
    let (_hg, g) = mount(&host, "gal-m", GALLERY, r#"{"assetBucketId": "pics-a"}"#).await;
    let (_hp, other) = mount(&host, "gal-p", GALLERY, r#"{"assetBucketId": "pics-b"}"#).await;
    let blob = svg_blob();
    ok(other.assets().upload(blob.into(), None)).await;
    let (acb, lists) = recorder();
    let _ua = g.assets().subscribe(acb, None);
    assert_eq!(Array::from(&ok(g.assets().list()).await).length(), 0);
    ok(host.relink("gal-m".into(), "assets".into(), "pics-b".into())).await;
    wait_until("the new bucket's list", 10_000, || {
        lists.borrow().iter().any(|(v, m)| {
            get(m, "bucket").as_string().as_deref() == Some("pics-b")
                && Array::from(v).length() == 1
        })
    })
    .await;
}

#[wasm_bindgen_test]
async fn quota_exceeded_reaches_the_widget_as_in_the_seed() {
    let (host, api) = setup().await;
    let (_h, g) = mount(&host, "gal-q", GALLERY, "{}").await;
    let (_h, n) = mount(&host, "note-q", NOTES, "{}").await;
    let (cb, events) = recorder();
    let _u = n.store().subscribe(JsValue::NULL, cb, None);
    ok(n.store().set(json(r#"{"text": "small"}"#), None)).await;
    api.dev_set_plan_limit(Plan::Pro, 0, Some(100))
        .await
        .expect("dev limit override");

    // The README's `if (err.message === "QUOTA_EXCEEDED")` after ctx.assets.upload(file).
    let big: Array = [JsValue::from_str(&"x".repeat(500))].iter().collect();
    let file = web_sys::Blob::new_with_str_sequence(&big).unwrap();
    let err = rejection(g.assets().upload(file.into(), None)).await;
    assert_eq!(code(&err), "QUOTA_EXCEEDED");
    assert_eq!(Array::from(&ok(g.assets().list()).await).length(), 0);

    // A document write past the quota rolls back to the confirmed value.
    let err = rejection(
        n.store()
            .set(json(&format!(r#"{{"text": "{}"}}"#, "y".repeat(500))), None),
    )
    .await;
    assert_eq!(code(&err), "QUOTA_EXCEEDED");
    wait_kind(&events, "rollback", r#"{"text":"small"}"#).await;
    assert_eq!(
        stringify(&ok(n.store().get(None)).await),
        r#"{"text":"small"}"#
    );
}

#[wasm_bindgen_test]
async fn mounting_loads_the_mirrored_document_before_the_widget_asks() {
    let user = Api::dev_new_user(server(), Plan::Pro)
        .await
        .expect("POST /v1/dev/users");
    let api = Api::new(server(), &user.token);
    let first = Host::from_engine(Engine::open(api.clone()).await.unwrap());
    let (_h, note) = mount(&first, "note-warm", NOTES, "{}").await;
    ok(note.store().set(json(r#"{"text": "kept"}"#), None)).await;
    first.close();

    // The host page reloads: a new engine over the same IndexedDB, nothing in memory.
    let host = Host::from_engine(Engine::open(api.clone()).await.unwrap());
    let engine = host.engine().clone();
    assert!(engine.peek("note-warm").is_none());
    let gets = api.counters().document_gets.get();
    let ch = web_sys::MessageChannel::new().unwrap();
    ok(host.mount_port(ch.port1(), mount_options("note-warm", NOTES, "{}"))).await;
    // No widget has asked anything yet: the mount alone brought the mirrored value to memory.
    wait_until("the mirrored document in memory", 10_000, || {
        engine
            .peek("note-warm")
            .is_some_and(|s| s.value == serde_json::json!({"text": "kept"}))
    })
    .await;
    assert_eq!(
        api.counters().document_gets.get(),
        gets,
        "from IndexedDB, not the server"
    );
    let note = widget::connect_port(ch.port2(), 5000).await.unwrap();
    assert_eq!(
        stringify(&ok(note.store().get(None)).await),
        r#"{"text":"kept"}"#
    );
    host.close();
}
