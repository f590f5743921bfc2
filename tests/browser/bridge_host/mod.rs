//! The Host router against the REAL backend (started by scripts/with-server.sh): widgets
//! connected through MessageChannels and through real iframes, each test with a fresh user.
#![cfg(target_arch = "wasm32")]

use crate::bridge_support::*;
use js_sys::{Array, Function, Object, Reflect};
use monodit_bridge::host::Host;
use monodit_bridge::http::Api;
use monodit_bridge::sync::Engine;
use monodit_bridge::widget::{self, Ctx};
use monodit_core::api::{Plan, PutDocument};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

fn server() -> &'static str {
    match option_env!("MONODIT_TEST_SERVER") {
        Some(url) => url,
        None => {
            panic!("MONODIT_TEST_SERVER is unset: run browser tests through scripts/with-server.sh")
        }
    }
}

const NOTES: &str = r#"{"id": "notes", "widgetType": "dynamic", "storage": {"bindings": [
  {"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true}]}}"#;
const TODO: &str = r#"{"id": "todo", "widgetType": "dynamic", "storage": {"bindings": [
  {"key": "primary", "backend": "d1-json", "schemaId": "todo.list", "schemaVersion": 1}]}}"#;
const BASIC: &str = r#"{"id": "clock"}"#;
const GALLERY: &str = r#"{"id": "gallery", "widgetType": "dynamic", "storage": {"bindings": [
  {"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1,
   "configKey": "assetBucketId", "shareable": true}]}}"#;
const FORMS: &str = r#"{"id": "forms", "storage": {
  "submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"]]}}}"#;

/// A fresh Pro user, a Host for it, and a raw client of the same user ("another device").
async fn setup() -> (Host, Api) {
    let user = Api::dev_new_user(server(), Plan::Pro)
        .await
        .expect("POST /v1/dev/users");
    let api = Api::new(server(), &user.token);
    let engine = Engine::open(api.clone()).await.expect("engine opens");
    (Host::from_engine(engine), api)
}

fn mount_options(id: &str, manifest: &str, config: &str) -> JsValue {
    json(&format!(
        r#"{{"instanceId": "{id}", "manifest": {manifest}, "config": {config}}}"#
    ))
}

/// Mounts an instance on a MessageChannel and connects a widget ctx to the other end.
async fn mount(host: &Host, id: &str, manifest: &str, config: &str) -> (JsValue, Ctx) {
    let ch = web_sys::MessageChannel::new().unwrap();
    let handle = ok(host.mount_port(ch.port1(), mount_options(id, manifest, config))).await;
    let ctx = widget::connect_port(ch.port2(), 5000)
        .await
        .expect("widget connects");
    (handle, ctx)
}

type Events = Rc<RefCell<Vec<(JsValue, JsValue)>>>;

/// A `(value, meta)` callback that records its calls.
fn recorder() -> (Function, Events) {
    let events: Events = Rc::new(RefCell::new(Vec::new()));
    let e = events.clone();
    let cb = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |v: JsValue, m: JsValue| {
        e.borrow_mut().push((v, m));
    });
    (cb.into_js_value().unchecked_into(), events)
}

fn kinds(events: &Events) -> Vec<String> {
    events
        .borrow()
        .iter()
        .map(|(_, m)| get(m, "kind").as_string().unwrap_or_default())
        .collect()
}

async fn wait_kind(events: &Events, kind: &str, value: &str) -> (JsValue, JsValue) {
    let find = |ev: &Events| {
        ev.borrow()
            .iter()
            .find(|(v, m)| {
                get(m, "kind").as_string().as_deref() == Some(kind) && stringify(v) == value
            })
            .cloned()
    };
    wait_until(&format!("a {kind} event with {value}"), 10_000, || {
        find(events).is_some()
    })
    .await;
    find(events).unwrap()
}

type HostLog = Rc<RefCell<Vec<JsValue>>>;

/// Records the host's event log (`host.onEvent`); keep the returned function (it removes the
/// listener) alive for as long as the log is read.
fn host_log(host: &Host) -> (HostLog, Function) {
    let log: HostLog = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let off = host.on_event(
        Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| l.borrow_mut().push(e))
            .into_js_value()
            .unchecked_into(),
    );
    (log, off)
}

/// How many event-log entries of `type` concern `instance`.
fn count_events(log: &HostLog, kind: &str, instance: &str) -> usize {
    log.borrow()
        .iter()
        .filter(|e| {
            get(e, "type").as_string().as_deref() == Some(kind)
                && get(e, "instanceId").as_string().as_deref() == Some(instance)
        })
        .count()
}

/// Mounts a real iframe running `body` as its widget (see `widget_page`), waits for the
/// widget's report, and checks it succeeded and that the host handshook with the frame
/// more than once (the bodies below ask for a re-handshake with a hello).
async fn rehandshaking_frame(
    host: &Host,
    reports: &FrameReports,
    body: &str,
    options: JsValue,
) -> (web_sys::HtmlIFrameElement, JsValue) {
    let (log, _off) = host_log(host);
    let instance = get(&options, "instanceId").as_string().unwrap();
    let f = frame(&widget_page(8000, body), None).await;
    ok(host.mount(f.clone().into(), options)).await;
    let r = reports.from(&f, 30_000).await;
    assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", stringify(&r));
    let handshakes = count_events(&log, "handshake", &instance);
    assert!(
        handshakes >= 2,
        "the hello caused a re-handshake ({handshakes})"
    );
    (f, r)
}

fn method(obj: &JsValue, name: &str) -> Function {
    get(obj, name)
        .dyn_into()
        .unwrap_or_else(|_| panic!("{name} is a method"))
}

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

const MIXED: &str = r#"{"id": "mixed", "widgetType": "dynamic", "storage": {"bindings": [
  {"key": "settings", "backend": "d1-json", "schemaId": "mixed.settings", "schemaVersion": 1},
  {"key": "files", "backend": "r2-assets", "schemaId": "mixed.files", "schemaVersion": 1,
   "configKey": "assetBucketId"}]}}"#;

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

fn cb_noop() -> Function {
    Function::new_no_args("")
}

#[wasm_bindgen_test]
async fn collections_check_declarations_and_drain_cursors() {
    let (host, _api) = setup().await;
    let (_h, ctx) = mount(&host, "forms-1", FORMS, "{}").await;
    let storage = ctx.storage();
    let subs = Reflect::get(&storage, &"submissions".into()).unwrap();
    let call = |name: &str, args: &[JsValue]| -> js_sys::Promise {
        let f = method(&subs, name);
        let args: Array = args.iter().collect();
        f.apply(&subs, &args).unwrap().unchecked_into()
    };

    let items: Array = (0..25)
        .map(|i| {
            json(&format!(
                r#"{{"id": "sub_{i:02}", "data": {{"formId": "{}", "status": "new", "createdAt": "2024-01-{:02}"}}}}"#,
                if i % 2 == 0 { "contact" } else { "support" },
                i + 1
            ))
        })
        .collect();
    ok(call("putMany", &[items.into()])).await;
    ok(call(
        "put",
        &[
            "solo".into(),
            json(r#"{"formId": "contact", "status": "pending", "createdAt": "2023-12-31"}"#),
        ],
    ))
    .await;
    assert_eq!(ok(call("count", &[])).await.as_f64(), Some(26.0));
    // Bad options name their path, whatever their JSON type.
    for bad in [
        r#"{"limit": -1}"#,
        r#"{"limit": 2.5}"#,
        r#"{"limit": "10"}"#,
    ] {
        let err = rejection(call("query", &[json(bad)])).await;
        assert_eq!(code(&err), "INVALID_ARGUMENT");
        assert!(stringify(&get(&err, "data")).contains("$.limit"), "{bad}");
    }
    assert_eq!(
        ok(call("count", &[json(r#"{"status": "pending"}"#)]))
            .await
            .as_f64(),
        Some(1.0)
    );
    assert_eq!(ok(call("exists", &["sub_03".into()])).await, JsValue::TRUE);
    assert_eq!(
        stringify(&get(&ok(call("get", &["solo".into()])).await, "status")),
        r#""pending""#
    );
    assert!(ok(call("get", &["missing".into()])).await.is_null());

    // getMany: a Map in the order asked, missing ids absent.
    let many = ok(call(
        "getMany",
        &[json(r#"["sub_10", "missing", "sub_02"]"#)],
    ))
    .await;
    let many: js_sys::Map = many.dyn_into().expect("a Map");
    assert_eq!(many.size(), 2);
    let keys: Vec<String> = many
        .keys()
        .into_iter()
        .map(|k| k.unwrap().as_string().unwrap())
        .collect();
    assert_eq!(keys, ["sub_10", "sub_02"]);

    // Drain a cursor: every item exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor = JsValue::UNDEFINED;
    let mut pages = 0;
    loop {
        let opts = Object::new();
        Reflect::set(&opts, &"orderBy".into(), &json(r#"{"createdAt": "desc"}"#)).unwrap();
        Reflect::set(&opts, &"limit".into(), &JsValue::from(10)).unwrap();
        Reflect::set(&opts, &"cursor".into(), &cursor).unwrap();
        let page = ok(call("query", &[opts.into()])).await;
        pages += 1;
        for item in Array::from(&get(&page, "items")).iter() {
            seen.push(get(&get(&item, "data"), "createdAt").as_string().unwrap());
        }
        cursor = get(&page, "cursor");
        assert_eq!(
            get(&page, "hasMore").as_bool(),
            Some(!cursor.is_undefined())
        );
        if cursor.is_undefined() || cursor.is_null() {
            break;
        }
        assert!(pages < 10, "the cursor never ends");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 26);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "descending, no duplicates");

    // Filter on an index.
    let page = ok(call(
        "query",
        &[json(
            r#"{"where": {"formId": "support"}, "orderBy": {"createdAt": "asc"}, "limit": 100}"#,
        )],
    ))
    .await;
    assert_eq!(Array::from(&get(&page, "items")).length(), 12);

    assert_eq!(ok(call("delete", &["solo".into()])).await, JsValue::TRUE);
    assert_eq!(ok(call("delete", &["solo".into()])).await, JsValue::FALSE);
    assert_eq!(
        ok(call(
            "deleteMany",
            &[json(r#"["sub_00", "sub_01", "nope"]"#)]
        ))
        .await
        .as_f64(),
        Some(2.0)
    );
    assert_eq!(ok(call("count", &[])).await.as_f64(), Some(23.0));

    // Undeclared: the proxy throws synchronously...
    let err = Reflect::get(&storage, &"comments".into()).expect_err("undeclared");
    assert_eq!(code(&err), "UNDECLARED_COLLECTION");
}

#[wasm_bindgen_test]
async fn the_host_rechecks_collections_and_survives_malformed_messages() {
    let (host, _api) = setup().await;
    let ch = web_sys::MessageChannel::new().unwrap();
    // The widget end is a raw port: whatever a hostile iframe could send.
    let peer = RawPeer::new(ch.port2());
    ok(host.mount_port(ch.port1(), mount_options("forms-2", FORMS, "{}"))).await;
    wait_until("the init message", 5000, || !peer.inbox.borrow().is_empty()).await;
    let init = peer.inbox.borrow()[0].clone();
    assert_eq!(
        get(&init, "type").as_string().as_deref(),
        Some("monodit:init")
    );
    assert_eq!(
        get(&init, "instanceId").as_string().as_deref(),
        Some("forms-2")
    );
    assert_eq!(stringify(&get(&init, "collections")), r#"["submissions"]"#);

    let fifty_mb: JsValue = js_sys::JsString::from("y").repeat(50 * 1024 * 1024).into();
    peer.send(&json("\"garbage\""));
    peer.send(&json(r#"{"op": "store.get"}"#));
    peer.send(&json(
        r#"{"id": 1, "op": "storage.get", "args": {"collection": "comments", "id": "x"}}"#,
    ));
    peer.send(&json(r#"{"id": 2, "op": "no.such.op"}"#));
    peer.send(&json(
        r#"{"id": 3, "op": "store.get", "args": {"namespace": 5}}"#,
    ));
    let big = Object::new();
    Reflect::set(&big, &"id".into(), &JsValue::from(4)).unwrap();
    Reflect::set(&big, &"op".into(), &"storage.put".into()).unwrap();
    Reflect::set(
        &big,
        &"args".into(),
        &json(r#"{"collection": "submissions", "id": "a"}"#),
    )
    .unwrap();
    Reflect::set(&get(&big, "args"), &"data".into(), &fifty_mb).unwrap();
    peer.send(&big.into());
    peer.send(&json(r#"{"id": 5, "op": "store.get"}"#)); // forms declares no binding
    peer.send(&json(r#"{"id": 6, "op": "storage.query", "args": {"collection": "submissions", "options": {"where": {"email": "x"}}}}"#));
    peer.send(&json(r#"{"id": 7, "op": "storage.query", "args": {"collection": "submissions", "options": {"cursor": "forged"}}}"#));

    let expect = [
        (1.0, "UNDECLARED_COLLECTION"),
        (2.0, "INVALID_ARGUMENT"),
        (3.0, "INVALID_ARGUMENT"),
        (4.0, "PAYLOAD_TOO_LARGE"),
        (5.0, "NO_BINDING"),
        (6.0, "NOT_INDEXED"),
        (7.0, "INVALID_CURSOR"),
    ];
    for (id, want) in expect {
        let reply = peer.reply(id).await;
        assert_eq!(get(&reply, "ok"), JsValue::FALSE, "{}", stringify(&reply));
        assert_eq!(
            get(&get(&reply, "error"), "code").as_string().as_deref(),
            Some(want),
            "request {id}: {}",
            stringify(&reply)
        );
    }
    // Still serving.
    peer.send(&json(
        r#"{"id": 8, "op": "storage.count", "args": {"collection": "submissions"}}"#,
    ));
    let reply = peer.reply(8.0).await;
    assert_eq!(get(&reply, "ok"), JsValue::TRUE, "{}", stringify(&reply));
    assert_eq!(get(&reply, "value").as_f64(), Some(0.0));
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
async fn assets_upload_as_blobs_list_subscribe_and_delete() {
    let (host, _api) = setup().await;
    let (_h, g1) = mount(&host, "gal-1", GALLERY, r#"{"assetBucketId": "pics"}"#).await;
    let (_h, g2) = mount(&host, "gal-2", GALLERY, r#"{"assetBucketId": "pics"}"#).await;
    let (cb, events) = recorder();
    let _u = g2.assets().subscribe(cb, None);
    ok(g2.assets().list()).await; // the subscription is registered (same-port order)

    let blob = svg_blob();
    let progress: Rc<RefCell<Vec<(f64, f64)>>> = Rc::new(RefCell::new(Vec::new()));
    let p = progress.clone();
    let on_progress =
        Closure::<dyn FnMut(f64, f64)>::new(move |l: f64, t: f64| p.borrow_mut().push((l, t)));
    let opts = Object::new();
    Reflect::set(&opts, &"onProgress".into(), &on_progress.into_js_value()).unwrap();
    Reflect::set(&opts, &"name".into(), &"dot.svg".into()).unwrap();
    let url = ok(g1.assets().upload(blob.into(), Some(opts))).await;
    let url = url.as_string().expect("upload resolves with the URL");
    assert!(url.starts_with("http"), "{url}");

    let list = ok(g2.assets().list()).await;
    let list = Array::from(&list);
    assert_eq!(list.length(), 1);
    let item = list.get(0);
    assert_eq!(get(&item, "name").as_string().as_deref(), Some("dot.svg"));
    assert_eq!(get(&item, "size").as_f64(), Some(41.0));
    wait_until("the asset event on the second widget", 10_000, || {
        events
            .borrow()
            .iter()
            .any(|(a, _)| Array::is_array(a) && Array::from(a).length() == 1)
    })
    .await;
    let (_, meta) = events.borrow().last().cloned().unwrap();
    assert_eq!(get(&meta, "bucket").as_string().as_deref(), Some("pics"));
    assert!(!progress.borrow().is_empty(), "onProgress was called");

    ok(g1.assets().delete(get(&item, "objectKey"))).await;
    assert_eq!(Array::from(&ok(g2.assets().list()).await).length(), 0);
    let err = rejection(g1.assets().upload(JsValue::from_str("not a file"), None)).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");

    // Deleting the bucket disconnects both widgets: back to their isolated buckets.
    let deleted = ok(host.delete_bucket("r2-assets".into(), "pics".into())).await;
    assert!(get(&deleted, "refundedBytes").as_f64().is_some());
    wait_until("config cleared", 5000, || {
        get(&g1.config(), "assetBucketId").is_undefined()
    })
    .await;
}

#[wasm_bindgen_test]
async fn cache_is_per_instance() {
    let (host, _api) = setup().await;
    let (_h, a) = mount(&host, "cache-a", BASIC, "{}").await;
    let (_h, b) = mount(&host, "cache-b", BASIC, "{}").await;
    ok(a.cache().set("k".into(), json(r#"{"x": 1}"#), None)).await;
    assert_eq!(
        stringify(&ok(a.cache().get("k".into())).await),
        r#"{"x":1}"#
    );
    assert!(ok(b.cache().get("k".into())).await.is_undefined());
    assert_eq!(stringify(&ok(a.cache().keys()).await), r#"["k"]"#);
    ok(a.cache().delete("k".into())).await;
    assert!(ok(a.cache().get("k".into())).await.is_undefined());
}

/// Cache keys are 1 to 1,024 bytes of UTF-8 (core `limits::MAX_CACHE_KEY_BYTES`, README
/// Limits): exactly at the bound passes through the port and the cache, one byte over is
/// INVALID_ARGUMENT, whether the key is ASCII or multi-byte.
#[wasm_bindgen_test]
async fn cache_keys_are_bounded_at_one_kib() {
    let (host, _api) = setup().await;
    let (_h, a) = mount(&host, "cache-keys", BASIC, "{}").await;
    for at in ["k".repeat(1024), "é".repeat(512)] {
        ok(a.cache().set(at.as_str().into(), json("1"), None)).await;
        assert_eq!(stringify(&ok(a.cache().get(at.as_str().into())).await), "1");
        ok(a.cache().delete(at.as_str().into())).await;
    }
    for over in ["k".repeat(1025), format!("{}k", "é".repeat(512))] {
        let key: JsValue = over.as_str().into();
        let err = rejection(a.cache().set(key.clone(), json("1"), None)).await;
        assert_eq!(code(&err), "INVALID_ARGUMENT");
        assert_eq!(
            code(&rejection(a.cache().get(key.clone())).await),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            code(&rejection(a.cache().delete(key)).await),
            "INVALID_ARGUMENT"
        );
    }
    assert_eq!(stringify(&ok(a.cache().keys()).await), "[]");
}

#[wasm_bindgen_test]
async fn topology_lists_widgets_but_not_themes() {
    let (host, _api) = setup().await;
    let (_h, w) = mount(
        &host,
        "note-w",
        NOTES,
        r#"{"storageNamespace": "shared-t"}"#,
    )
    .await;
    let ch = web_sys::MessageChannel::new().unwrap();
    let theme = json(&format!(
        r#"{{"instanceId": "theme-1", "kind": "theme", "manifest": {NOTES}, "config": {{"storageNamespace": "shared-t"}}}}"#
    ));
    ok(host.mount_port(ch.port1(), theme)).await;
    let t = widget::connect_port(ch.port2(), 5000).await.unwrap();
    assert_eq!(t.kind(), "theme");
    ok(w.store().set(json("1"), None)).await;
    ok(t.store().set(json("2"), Some("theme-own".into()))).await;
    let topo = ok(host.topology()).await;
    let buckets = Array::from(&get(&topo, "buckets"));
    let shared = buckets
        .iter()
        .find(|b| get(b, "bucketId").as_string().as_deref() == Some("shared-t"))
        .expect("the shared bucket is listed");
    let ids: Vec<String> = Array::from(&get(&shared, "instances"))
        .iter()
        .map(|i| get(&i, "instanceId").as_string().unwrap())
        .collect();
    assert_eq!(ids, ["note-w"], "themes are not topology widgets");
    assert!(get(&get(&topo, "usage"), "limitBytes").as_f64().unwrap() > 0.0);
}

#[wasm_bindgen_test]
async fn real_iframes_sandboxed_and_module_widgets_connect_to_the_host() {
    let (host, _api) = setup().await;
    let reports = FrameReports::listen();

    // 1. The widget bundle itself, inside an iframe, through connect().
    let page = widget_page(
        8000,
        r#"await ctx.store.set({n: 1}); const v = await ctx.store.get(); return v;"#,
    );
    let f1 = frame(&page, None).await;
    ok(host.mount(f1.clone().into(), mount_options("frame-1", NOTES, "{}"))).await;
    let r = reports.from(&f1, 15_000).await;
    assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", stringify(&r));
    assert_eq!(
        get(&r, "instanceId").as_string().as_deref(),
        Some("frame-1")
    );
    assert_eq!(stringify(&get(&r, "value")), r#"{"n":1}"#);

    // 2. A plain-JS widget in a sandboxed (origin "null") iframe doing the documented handshake.
    let plain = r#"<!doctype html><script>
const report = (m) => parent.postMessage(Object.assign({type: "bridge-test"}, m), "*");
addEventListener("message", (ev) => {
  if (ev.source !== parent || !ev.data || ev.data.type !== "monodit:connect") return;
  const port = ev.ports[0];
  let inited = false;
  port.onmessage = (m) => {
    const d = m.data;
    if (d.type === "monodit:init") {
      if (inited) return; inited = true;
      port.postMessage({id: 1, op: "store.set", args: {value: {sandboxed: true}}});
      return;
    }
    if (d.id === 1) port.postMessage({id: 2, op: "store.get"});
    if (d.id === 2) report({ok: d.ok, instanceId: "?", value: d.value && d.value.value, origin: String(self.origin)});
  };
});
</script>"#;
    let f2 = frame(plain, Some("allow-scripts")).await;
    ok(host.mount(f2.clone().into(), mount_options("frame-2", NOTES, "{}"))).await;
    let r = reports.from(&f2, 15_000).await;
    assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", stringify(&r));
    assert_eq!(get(&r, "origin").as_string().as_deref(), Some("null"));
    assert_eq!(stringify(&get(&r, "value")), r#"{"sandboxed":true}"#);

    // 3. A navigated iframe gets a fresh port (re-handshake on load).
    let (log, _off) = host_log(&host);
    f2.set_srcdoc(&plain.replace("sandboxed: true", "sandboxed: 2"));
    wait_until("the re-handshake after navigation", 10_000, || {
        log.borrow().iter().any(|e| {
            get(e, "type").as_string().as_deref() == Some("handshake")
                && get(e, "instanceId").as_string().as_deref() == Some("frame-2")
        })
    })
    .await;
    // 4. A removed iframe is torn down at once (port closed, subscriptions dropped).
    remove(&f1);
    wait_until("the unmount of the removed iframe", 5_000, || {
        log.borrow().iter().any(|e| {
            get(e, "type").as_string().as_deref() == Some("unmount")
                && get(e, "instanceId").as_string().as_deref() == Some("frame-1")
        })
    })
    .await;
    // Its instance id is free again: mounting it anew works.
    let f3 = frame(&widget_page(8000, "return await ctx.store.get();"), None).await;
    ok(host.mount(f3.clone().into(), mount_options("frame-1", NOTES, "{}"))).await;
    let r = reports.from(&f3, 15_000).await;
    assert_eq!(
        stringify(&get(&r, "value")),
        r#"{"n":1}"#,
        "{}",
        stringify(&r)
    );
    remove(&f2);
    remove(&f3);
}

#[wasm_bindgen_test]
async fn a_re_handshake_keeps_calls_and_subscriptions_working() {
    let (host, _api) = setup().await;
    let reports = FrameReports::listen();
    // The widget subscribes, then asks its host for a new handshake (as a widget that
    // connected late does): the host drops the old port and its subscriptions, the widget
    // moves to the new port and re-subscribes under the same ids.
    let (f, _) = rehandshaking_frame(
        &host,
        &reports,
        r#"ctx.store.subscribe(null, (value, meta) =>
             parent.postMessage({type: "bridge-test", event: meta.kind, value}, "*"));
           parent.postMessage({type: "monodit:hello", version: 1}, "*");
           await new Promise((r) => setTimeout(r, 300));
           return await ctx.store.get();"#,
        mount_options("rh-1", NOTES, r#"{"storageNamespace": "rh"}"#),
    )
    .await;
    // A write by another widget still reaches the iframe's subscription on the new port.
    let (_h, other) = mount(&host, "rh-2", NOTES, r#"{"storageNamespace": "rh"}"#).await;
    ok(other.store().set(json(r#"{"after": "rehandshake"}"#), None)).await;
    wait_until("the event on the re-subscribed port", 10_000, || {
        reports.all_from(&f).iter().any(|m| {
            get(m, "event").as_string().as_deref() == Some("confirmed")
                && stringify(&get(m, "value")) == r#"{"after":"rehandshake"}"#
        })
    })
    .await;
    remove(&f);
}

#[wasm_bindgen_test]
async fn a_call_resent_after_a_rehandshake_runs_once() {
    let (host, api) = setup().await;
    let reports = FrameReports::listen();
    // The widget starts an upload, then asks for a new handshake while it is in flight: the
    // old port closes with the call unanswered, and the widget re-sends it on the new port.
    let (f, r) = rehandshaking_frame(
        &host,
        &reports,
        r#"const file = new File([new Uint8Array(8 * 1024 * 1024)], "big.bin",
                                 {type: "application/octet-stream"});
           const upload = ctx.assets.upload(file, {onProgress: () => {}});
           parent.postMessage({type: "monodit:hello", version: 1}, "*");
           const url = await upload;
           const list = await ctx.assets.list();
           return {url: typeof url, count: list.length};"#,
        mount_options("once-1", GALLERY, r#"{"assetBucketId": "once-assets"}"#),
    )
    .await;
    assert_eq!(
        stringify(&get(&r, "value")),
        r#"{"url":"string","count":1}"#
    );
    let on_server = api.assets("once-assets").await.expect("list");
    assert_eq!(on_server.assets.len(), 1, "one upload on the server");
    remove(&f);
}

#[wasm_bindgen_test]
async fn host_create_checks_its_options() {
    let user = Api::dev_new_user(server(), Plan::Pro).await.unwrap();
    let opts = json(&format!(
        r#"{{"backendUrl": "{}", "token": "{}"}}"#,
        server(),
        user.token
    ));
    let host = ok(Host::create(opts)).await;
    assert!(get(&host, "mount").is_function());
    assert_eq!(
        code(&rejection(Host::create(json("{}"))).await),
        "INVALID_ARGUMENT"
    );
    let bad_token = json(&format!(
        r#"{{"backendUrl": "{}", "token": "nope"}}"#,
        server()
    ));
    assert_eq!(
        code(&rejection(Host::create(bad_token)).await),
        "UNAUTHENTICATED"
    );
}

fn svg_blob() -> web_sys::Blob {
    let parts: Array = [JsValue::from_str(
        "<svg xmlns='http://www.w3.org/2000/svg'/>",
    )]
    .iter()
    .collect();
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type("image/svg+xml");
    web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag).unwrap()
}

#[wasm_bindgen_test]
async fn explicit_asset_buckets_for_themes_and_compatible_widgets() {
    let (host, _api) = setup().await;
    let (_h, g1) = mount(&host, "gal-1", GALLERY, r#"{"assetBucketId": "pics"}"#).await;
    ok(g1.assets().upload(svg_blob().into(), None)).await;

    let theme_manifest = r#"{"id": "skin", "widgetType": "dynamic", "storage": {"bindings": [
      {"key": "assets", "backend": "r2-assets", "schemaId": "theme.assets", "schemaVersion": 1}]}}"#;
    let ch = web_sys::MessageChannel::new().unwrap();
    let opts = json(&format!(
        r#"{{"instanceId": "skin-1", "kind": "theme", "manifest": {theme_manifest}}}"#
    ));
    ok(host.mount_port(ch.port1(), opts)).await;
    let theme = widget::connect_port(ch.port2(), 5000).await.unwrap();
    // Another contract's bucket: refused.
    let err = rejection(theme.assets().with_bucket("pics".into()).list()).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    // Its own explicit bucket: works.
    let own = theme.assets().with_bucket("skin-assets".into());
    ok(own.upload(svg_blob().into(), None)).await;
    assert_eq!(Array::from(&ok(own.list()).await).length(), 1);

    // A compatible widget may name the shared bucket explicitly.
    let (_h, g2) = mount(&host, "gal-2", GALLERY, "{}").await;
    assert_eq!(
        Array::from(&ok(g2.assets().list()).await).length(),
        0,
        "isolated"
    );
    let shared = ok(g2.assets().with_bucket("pics".into()).list()).await;
    assert_eq!(Array::from(&shared).length(), 1);
}

#[wasm_bindgen_test]
async fn themes_use_explicit_namespaces_without_declaring_bindings() {
    let (host, _api) = setup().await;
    let (_h, note) = mount(
        &host,
        "note-th",
        NOTES,
        r#"{"storageNamespace": "th-notes"}"#,
    )
    .await;
    ok(note.store().set(json(r#"{"text": "widget data"}"#), None)).await;

    // A Dynamic Theme (README, For widget authors): no storage contract at all, explicit names.
    let ch = web_sys::MessageChannel::new().unwrap();
    let opts = json(r#"{"instanceId": "aurora-1", "kind": "theme", "manifest": {"id": "aurora"}}"#);
    ok(host.mount_port(ch.port1(), opts)).await;
    let theme = widget::connect_port(ch.port2(), 5000).await.unwrap();
    let written = ok(theme
        .store()
        .set(json(r#"{"accent": "teal"}"#), Some("aurora-palette".into())))
    .await;
    assert_eq!(
        get(&written, "bucket").as_string().as_deref(),
        Some("aurora-palette")
    );
    assert_eq!(
        stringify(&ok(theme.store().get(Some("aurora-palette".into()))).await),
        r#"{"accent":"teal"}"#
    );
    let own = theme.assets().with_bucket("aurora-art".into());
    ok(own.upload(svg_blob().into(), None)).await;
    assert_eq!(Array::from(&ok(own.list()).await).length(), 1);

    // A widget's bucket holds another contract: the theme can neither read nor overwrite it.
    let err = rejection(theme.store().get(Some("th-notes".into()))).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    let err = rejection(theme.store().set(json("{}"), Some("th-notes".into()))).await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    assert_eq!(
        stringify(&ok(note.store().get(None)).await),
        r#"{"text":"widget data"}"#
    );
    // A widget with the same bare manifest still has no store.
    let (_h, plain) = mount(&host, "plain-th", r#"{"id": "aurora"}"#, "{}").await;
    assert_eq!(
        code(&rejection(plain.store().get(None)).await),
        "NO_BINDING"
    );
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
async fn kv_holds_plugin_settings_and_state_as_in_seed_003() {
    let (host, _api) = setup().await;
    let (_h, forms) = mount(&host, "forms-kv", FORMS, "{}").await;
    let kv = forms.kv();
    assert_eq!(ok(kv.get("settings:theme".into())).await, JsValue::NULL);
    ok(kv.set("settings:theme".into(), json(r#"{"accent": "teal"}"#))).await;
    ok(kv.set("state:lastRun".into(), JsValue::from(5))).await;
    assert_eq!(
        stringify(&ok(kv.get("settings:theme".into())).await),
        r#"{"accent":"teal"}"#
    );
    assert_eq!(
        stringify(&ok(kv.list(Some("settings:".into()))).await),
        r#"[{"key":"settings:theme","value":{"accent":"teal"}}]"#
    );
    assert_eq!(
        stringify(&ok(kv.list(None)).await),
        r#"[{"key":"settings:theme","value":{"accent":"teal"}},{"key":"state:lastRun","value":5}]"#
    );
    assert_eq!(ok(kv.delete("state:lastRun".into())).await, JsValue::TRUE);
    assert_eq!(ok(kv.delete("state:lastRun".into())).await, JsValue::FALSE);

    // Another instance of the same plugin shares its kv; another plugin does not see it.
    let (_h, forms2) = mount(&host, "forms-kv-2", FORMS, "{}").await;
    assert_eq!(
        stringify(&ok(forms2.kv().get("settings:theme".into())).await),
        r#"{"accent":"teal"}"#
    );
    let (_h, notes) = mount(&host, "notes-kv", NOTES, "{}").await;
    assert_eq!(stringify(&ok(notes.kv().list(None)).await), "[]");

    // Bad input gets coded errors; a manifest without an id has no kv.
    let err = rejection(kv.set("settings:x".into(), JsValue::UNDEFINED)).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    let err = rejection(kv.get("".into())).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    let err = rejection(kv.get(JsValue::from(42))).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    let (_h, clock) = mount(&host, "clock-kv", r#"{"name": "clock"}"#, "{}").await;
    let err = rejection(clock.kv().get("settings:x".into())).await;
    assert_eq!(code(&err), "INVALID_MANIFEST");
}

#[wasm_bindgen_test]
async fn kv_list_returns_every_page() {
    let (host, api) = setup().await;
    // One more key than a server page holds, written by "another device".
    let n = monodit_core::kv::MAX_LIST + 1;
    let keys: Vec<String> = (0..n).map(|i| format!("state:item{i:05}")).collect();
    for chunk in keys.chunks(50) {
        let puts = chunk
            .iter()
            .map(|k| api.kv_set("forms", k, serde_json::json!(1)));
        for r in futures::future::join_all(puts).await {
            r.expect("kv set");
        }
    }
    let (_h, forms) = mount(&host, "forms-kv-pages", FORMS, "{}").await;
    let all = Array::from(&ok(forms.kv().list(Some("state:".into()))).await);
    assert_eq!(all.length() as usize, n);
    let got: Vec<String> = all
        .iter()
        .map(|e| get(&e, "key").as_string().unwrap())
        .collect();
    assert_eq!(got, keys, "every key, in key order, once");
}

#[wasm_bindgen_test]
async fn log_lines_reach_the_host_event_log_bounded() {
    let (host, _api) = setup().await;
    let (log, _off) = host_log(&host);
    let (_h, forms) = mount(&host, "forms-log", FORMS, "{}").await;
    let lines = |log: &HostLog| -> Vec<JsValue> {
        log.borrow()
            .iter()
            .filter(|e| get(e, "type").as_string().as_deref() == Some("log"))
            .cloned()
            .collect()
    };
    // As www/widgets/forms does: ctx.log.info("Stored submission", { id: item?.formId })
    forms.log().info(
        "Stored submission".into(),
        Some(json(r#"{"id": "contact"}"#)),
    );
    forms
        .log()
        .warn(JsValue::from_str(&"x".repeat(10_000)), None);
    forms.log().error(json(r#"{"not": "a string"}"#), None);
    wait_until("three log lines", 10_000, || lines(&log).len() >= 3).await;
    // Data that cannot cross the port (a function) is replaced by a note; the line stays.
    let f = Function::new_no_args("return 1");
    forms.log().info("with a function".into(), Some(f.into()));
    wait_until("the fourth line", 10_000, || lines(&log).len() >= 4).await;
    let got = lines(&log);
    assert_eq!(
        get(&got[3], "message").as_string().as_deref(),
        Some("with a function")
    );
    assert!(get(&got[3], "data")
        .as_string()
        .is_some_and(|d| d.starts_with("(data omitted")));
    assert_eq!(get(&got[0], "level").as_string().as_deref(), Some("info"));
    assert_eq!(
        get(&got[0], "instanceId").as_string().as_deref(),
        Some("forms-log")
    );
    assert_eq!(
        get(&got[0], "message").as_string().as_deref(),
        Some("Stored submission")
    );
    assert_eq!(stringify(&get(&got[0], "data")), r#"{"id":"contact"}"#);
    let long = get(&got[1], "message").as_string().unwrap();
    assert!(
        long.chars().count() <= 4097 && long.ends_with('…'),
        "cut, not dropped"
    );
    assert_eq!(
        get(&got[2], "message").as_string().as_deref(),
        Some(r#"{"not":"a string"}"#),
        "a non-string message is shown as its JSON"
    );

    // A flood is capped per mount (100 per second); the port keeps answering other calls.
    // 1,000 lines take well under a second to send; the bound below tolerates six window
    // rollovers during the burst, so only a missing cap (all 1,004 lines) fails it.
    for i in 0..1_000 {
        forms.log().debug(JsValue::from(i), None);
    }
    // A call on the same port answers after every log call was handled.
    ok(forms.cache().keys()).await;
    // The three lines above may share the flood's window.
    let n = lines(&log).len();
    assert!(
        (100..=700).contains(&n),
        "{n} of 1004 lines reached the event log"
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

/// The instance ids registered with the backend for this user.
async fn registered(api: &Api) -> Vec<String> {
    let all = api.instances().await.expect("GET /v1/instances");
    all.into_iter().map(|i| i.instance_id).collect()
}

/// An iframe (not yet loaded) whose page is `path` on the test server.
fn frame_at(path: &str) -> web_sys::HtmlIFrameElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let f: web_sys::HtmlIFrameElement = doc.create_element("iframe").unwrap().unchecked_into();
    f.set_src(path);
    doc.body().unwrap().append_child(&f).unwrap();
    f
}

#[wasm_bindgen_test]
async fn a_widget_from_another_source_cannot_claim_a_mounted_plugin_id() {
    let (host, api) = setup().await;
    let origin = web_sys::window().unwrap().location().origin().unwrap();
    let a = frame_at("/widgets/forms/index.html?v=1");
    ok(host.mount(a.clone().into(), mount_options("forms-src-1", FORMS, "{}"))).await;
    let held = api.instances().await.unwrap();
    assert_eq!(
        held[0].source.as_deref(),
        Some(format!("{origin}/widgets/forms/index.html").as_str()),
        "the source is the iframe's URL without its query"
    );
    // The same widget with another cache-busting query is the same source.
    let b = frame_at("/widgets/forms/index.html?v=2#x");
    ok(host.mount(b.clone().into(), mount_options("forms-src-2", FORMS, "{}"))).await;

    // A page from elsewhere whose manifest claims "forms" is refused, in an iframe or on a
    // port with an explicit source, and is never registered.
    let evil = frame_at("/widgets/attacker/index.html");
    let err =
        rejection(host.mount(evil.clone().into(), mount_options("evil-1", FORMS, "{}"))).await;
    assert_eq!(code(&err), "PLUGIN_ID_TAKEN");
    assert_eq!(
        get(&get(&err, "data"), "pluginId").as_string().as_deref(),
        Some("forms")
    );
    let ch = web_sys::MessageChannel::new().unwrap();
    let claim = json(&format!(
        r#"{{"instanceId": "evil-2", "manifest": {FORMS}, "source": "https://evil.example/w.html"}}"#
    ));
    let err = rejection(host.mount_port(ch.port1(), claim)).await;
    assert_eq!(code(&err), "PLUGIN_ID_TAKEN");
    assert_eq!(registered(&api).await, ["forms-src-1", "forms-src-2"]);

    // A publisher id given by the host is the source as it is; a bad one is refused.
    let ch = web_sys::MessageChannel::new().unwrap();
    let bad = json(&format!(
        r#"{{"instanceId": "forms-src-3", "manifest": {FORMS}, "source": 42}}"#
    ));
    let err = rejection(host.mount_port(ch.port1(), bad)).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    for f in [a, b, evil] {
        f.remove();
    }
}

#[wasm_bindgen_test]
async fn removing_an_instance_drops_its_declaration_and_registration() {
    let (host, api) = setup().await;
    let v1 = r#"{"id": "scores", "storage": {"items": {"indexes": ["score", "createdAt"]}}}"#;
    let v2 = r#"{"id": "scores", "storage": {"items": {"indexes": ["createdAt"]}}}"#;
    let (_h1, old) = mount(&host, "scores-1", v1, "{}").await;
    let items = get(&old.storage(), "items");
    let put: Function = method(&items, "put");
    ok(put
        .call2(&items, &"a".into(), &json(r#"{"score": 1}"#))
        .unwrap()
        .unchecked_into())
    .await;

    // The user takes v1 off the dashboard and adds the updated widget (an index removed in an
    // update makes queries on that field fail).
    ok(host.remove_instance("scores-1".into())).await;
    let (_h2, new) = mount(&host, "scores-2", v2, "{}").await;
    let items = get(&new.storage(), "items");
    let count: Function = method(&items, "count");
    let err = rejection(
        count
            .call1(&items, &json(r#"{"score": 1}"#))
            .unwrap()
            .unchecked_into(),
    )
    .await;
    assert_eq!(code(&err), "NOT_INDEXED");
    assert_eq!(registered(&api).await, ["scores-2"]);
    // Removing it again is NOT_FOUND; the removed mount's port is closed.
    let err = rejection(host.remove_instance("scores-1".into())).await;
    assert_eq!(code(&err), "NOT_FOUND");
    let err = rejection(old.cache().keys()).await;
    assert_eq!(code(&err), "CLOSED", "a removed mount serves no calls");
}

#[wasm_bindgen_test]
async fn plugin_data_outlives_its_widget_until_the_host_deletes_it() {
    let (host, _api) = setup().await;
    let options = |id: &str, source: &str| {
        json(&format!(
            r#"{{"instanceId": "{id}", "manifest": {FORMS}, "source": "{source}"}}"#
        ))
    };
    let ch = web_sys::MessageChannel::new().unwrap();
    ok(host.mount_port(ch.port1(), options("forms-1", "acme/forms"))).await;
    let forms = widget::connect_port(ch.port2(), 5000).await.unwrap();
    let subs = get(&forms.storage(), "submissions");
    ok(method(&subs, "put")
        .call2(&subs, &"a".into(), &json(r#"{"status": "new"}"#))
        .unwrap()
        .unchecked_into())
    .await;
    ok(forms.kv().set("settings:filter".into(), "new".into())).await;
    let listed = ok(host.plugins()).await;
    let p = Array::from(&listed).get(0);
    assert_eq!(get(&p, "pluginId").as_string().as_deref(), Some("forms"));
    assert_eq!(get(&p, "source").as_string().as_deref(), Some("acme/forms"));
    assert_eq!(get(&p, "items").as_f64(), Some(1.0));
    assert_eq!(get(&p, "kvKeys").as_f64(), Some(1.0));

    // The widget is removed; another publisher's widget claiming "forms" still cannot read
    // the data it left.
    ok(host.remove_instance("forms-1".into())).await;
    let ch = web_sys::MessageChannel::new().unwrap();
    let err = rejection(host.mount_port(ch.port1(), options("evil-1", "evil/forms"))).await;
    assert_eq!(code(&err), "PLUGIN_ID_TAKEN");

    // The user deletes the plugin's data: every byte is refunded and the id is free.
    let deleted = ok(host.delete_plugin_data("forms".into())).await;
    assert_eq!(get(&deleted, "deletedItems").as_f64(), Some(1.0));
    assert_eq!(get(&deleted, "deletedKeys").as_f64(), Some(1.0));
    assert_eq!(get(&deleted, "released"), JsValue::TRUE);
    let ch = web_sys::MessageChannel::new().unwrap();
    ok(host.mount_port(ch.port1(), options("evil-1", "evil/forms"))).await;
    let newcomer = widget::connect_port(ch.port2(), 5000).await.unwrap();
    let subs = get(&newcomer.storage(), "submissions");
    let n = ok(method(&subs, "count")
        .call0(&subs)
        .unwrap()
        .unchecked_into())
    .await;
    assert_eq!(n.as_f64(), Some(0.0));
}

/// Host event-log entries of one type for one instance.
fn entries(log: &HostLog, kind: &str, instance: &str) -> Vec<JsValue> {
    log.borrow()
        .iter()
        .filter(|e| {
            get(e, "type").as_string().as_deref() == Some(kind)
                && get(e, "instanceId").as_string().as_deref() == Some(instance)
        })
        .cloned()
        .collect()
}

#[wasm_bindgen_test]
async fn an_iframe_mounted_blank_is_checked_when_its_widget_loads() {
    let (host, api) = setup().await;
    let (log, _off) = host_log(&host);
    let origin = web_sys::window().unwrap().location().origin().unwrap();
    // The dashboard order: mount the blank iframe, then set its src.
    let victim = frame_at("about:blank");
    ok(host.mount(victim.clone().into(), mount_options("forms-v", FORMS, "{}"))).await;
    victim.set_src("/widgets/forms/index.html?v=3");
    let wanted = format!("{origin}/widgets/forms/index.html");
    wait_until("the victim registered with its source", 10_000, || {
        entries(&log, "handshake", "forms-v").len() >= 2
    })
    .await;
    let mut pinned = false;
    for _ in 0..50 {
        let all = api.instances().await.unwrap();
        if all
            .iter()
            .any(|i| i.instance_id == "forms-v" && i.source.as_deref() == Some(&wanted))
        {
            pinned = true;
            break;
        }
        sleep(100).await;
    }
    assert!(pinned, "registered at load with {wanted}");

    // An attacker mounted the same way is refused when its page loads (not at mount, when
    // its source was still unknown), and a port mount with no source cannot claim it either.
    let evil = frame_at("about:blank");
    ok(host.mount(evil.clone().into(), mount_options("forms-e", FORMS, "{}"))).await;
    evil.set_src("/widgets/attacker/index.html");
    wait_until("the refused claim in the event log", 10_000, || {
        entries(&log, "protocolError", "forms-e")
            .iter()
            .any(|e| get(e, "code").as_string().as_deref() == Some("PLUGIN_ID_TAKEN"))
    })
    .await;
    assert!(!registered(&api).await.contains(&"forms-e".to_string()));
    let ch = web_sys::MessageChannel::new().unwrap();
    let err = rejection(host.mount_port(ch.port1(), mount_options("forms-p", FORMS, "{}"))).await;
    assert_eq!(code(&err), "PLUGIN_ID_TAKEN");
    for f in [victim, evil] {
        f.remove();
    }
}

#[wasm_bindgen_test]
async fn a_widget_that_navigates_itself_is_disconnected_until_the_host_reloads_it() {
    let (host, _api) = setup().await;
    let (log, _off) = host_log(&host);
    let reports = FrameReports::listen();
    // A connected widget (it made a call) that then follows a link away.
    let page = r#"<!doctype html><script>
const report = (m) => parent.postMessage(Object.assign({type: "bridge-test"}, m), "*");
addEventListener("message", (ev) => {
  if (ev.source !== parent || !ev.data || ev.data.type !== "monodit:connect") return;
  const port = ev.ports[0];
  port.onmessage = (m) => {
    if (m.data.type === "monodit:init") { port.postMessage({id: 1, op: "store.get"}); return; }
    if (m.data.id === 1) { report({ok: true}); location.href = "/wasm-bindgen-test.js"; }
  };
});
</script>"#;
    let f = frame(page, Some("allow-scripts")).await;
    ok(host.mount(f.clone().into(), mount_options("nav-1", NOTES, "{}"))).await;
    let r = reports.from(&f, 15_000).await;
    assert_eq!(get(&r, "ok"), JsValue::TRUE);
    let refusals = |log: &HostLog| {
        entries(log, "protocolError", "nav-1")
            .iter()
            .filter(|e| get(e, "code").as_string().as_deref() == Some("FORBIDDEN"))
            .count()
    };
    wait_until("the navigation is refused", 10_000, || refusals(&log) >= 1).await;
    // The page it went to navigates on (what the host sees of it: one more `load`): still no
    // port, since only the host's own navigation lifts the suspension.
    f.dispatch_event(&web_sys::Event::new("load").unwrap())
        .unwrap();
    wait_until("the next load is refused too", 10_000, || {
        refusals(&log) >= 2
    })
    .await;
    let handshakes = entries(&log, "handshake", "nav-1").len();
    sleep(300).await;
    assert_eq!(
        entries(&log, "handshake", "nav-1").len(),
        handshakes,
        "no port for the page the widget navigated to"
    );
    // The host loads the widget again: it connects as before.
    f.set_srcdoc(page);
    wait_until("the reloaded widget's report", 15_000, || {
        reports.all_from(&f).len() >= 2
    })
    .await;
    assert!(entries(&log, "handshake", "nav-1").len() > handshakes);
    f.remove();
}

#[wasm_bindgen_test]
async fn host_methods_check_their_arguments_and_unmount_rejects_calls_with_closed() {
    let (host, _api) = setup().await;
    let div = web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .create_element("div")
        .unwrap();
    let err = rejection(host.mount(div.into(), mount_options("d-1", NOTES, "{}"))).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    for p in [
        host.remove_instance(JsValue::from(42)),
        host.delete_plugin_data(JsValue::UNDEFINED),
        host.relink(JsValue::UNDEFINED, "primary".into(), "b".into()),
        host.delete_bucket("d1-json".into(), JsValue::NULL),
    ] {
        assert_eq!(code(&rejection(p).await), "INVALID_ARGUMENT");
    }
    // One iframe, one mount.
    let f = frame("<!doctype html>", Some("allow-scripts")).await;
    ok(host.mount(f.clone().into(), mount_options("i-1", NOTES, "{}"))).await;
    let err = rejection(host.mount(f.clone().into(), mount_options("i-2", NOTES, "{}"))).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    f.remove();

    // Unmounting rejects the call still on its way and every later one with CLOSED.
    let (handle, ctx) = mount(&host, "u-1", NOTES, "{}").await;
    let pending = ctx.store().set(json(r#"{"n": 1}"#), None);
    method(&handle, "unmount").call0(&handle).unwrap();
    assert_eq!(code(&rejection(pending).await), "CLOSED");
    assert_eq!(code(&rejection(ctx.store().get(None)).await), "CLOSED");
    let again = method(&handle, "setConfig")
        .call1(&handle, &json("{}"))
        .unwrap()
        .unchecked_into::<js_sys::Promise>();
    assert_eq!(code(&rejection(again).await), "CLOSED");
}

#[wasm_bindgen_test]
async fn a_message_flood_is_cut_off_and_the_host_keeps_serving_others() {
    let (host, _api) = setup().await;
    let (log, _off) = host_log(&host);
    let ch = web_sys::MessageChannel::new().unwrap();
    let peer = RawPeer::new(ch.port2());
    ok(host.mount_port(ch.port1(), mount_options("flood-1", NOTES, "{}"))).await;
    for i in 0..12_000u32 {
        peer.send(&json(&format!(
            r#"{{"id": {}, "op": "cache.keys"}}"#,
            i + 1
        )));
    }
    wait_until("the port is closed", 15_000, || {
        peer.inbox
            .borrow()
            .iter()
            .any(|m| get(m, "event").as_string().as_deref() == Some("closed"))
    })
    .await;
    let limited = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(&get(m, "error"), "code").as_string().as_deref() == Some("RATE_LIMITED"))
        .count();
    assert!(
        limited > 0,
        "requests past the rate are answered RATE_LIMITED"
    );
    let answered = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| !get(m, "ok").is_undefined())
        .count();
    assert!(answered < 12_000, "{answered}: the rest was never read");
    assert!(entries(&log, "protocolError", "flood-1")
        .iter()
        .any(|e| get(e, "code").as_string().as_deref() == Some("RATE_LIMITED")));
    // Another widget on the same host is served as usual.
    let (_h, other) = mount(&host, "calm-1", NOTES, "{}").await;
    ok(other.store().set(json(r#"{"fine": true}"#), None)).await;
}

#[wasm_bindgen_test]
async fn a_widget_loaded_before_its_host_existed_still_cannot_hand_its_port_away() {
    // The widget page loads and connects before this Host exists (its hello is lost), the
    // host mounts it afterwards, and the widget then navigates itself.
    let reports = FrameReports::listen();
    let f = frame(
        &widget_page(
            20_000,
            r#"setTimeout(() => { location.href = "/wasm-bindgen-test.js"; }, 300);
               return ctx.instanceId;"#,
        ),
        None,
    )
    .await;
    let (host, _api) = setup().await;
    let (log, _off) = host_log(&host);
    ok(host.mount(f.clone().into(), mount_options("late-1", NOTES, "{}"))).await;
    let r = reports.from(&f, 20_000).await;
    assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", stringify(&r));
    wait_until("the self-navigation is refused", 10_000, || {
        entries(&log, "protocolError", "late-1")
            .iter()
            .any(|e| get(e, "code").as_string().as_deref() == Some("FORBIDDEN"))
    })
    .await;
    f.remove();
}

#[wasm_bindgen_test]
async fn mount_rejects_with_the_servers_per_user_limits() {
    let (host, api) = setup().await;
    // A config past the server's 16 KiB (core `limits`) is refused, not registered.
    let big = "x".repeat(monodit_core::limits::MAX_CONFIG_BYTES);
    let ch = web_sys::MessageChannel::new().unwrap();
    let opts = json(&format!(
        r#"{{"instanceId": "big-config", "manifest": {NOTES}, "config": {{"k": "{big}"}}, "source": "https://w.example/notes.html"}}"#
    ));
    let err = rejection(host.mount_port(ch.port1(), opts)).await;
    assert_eq!(code(&err), "PAYLOAD_TOO_LARGE");
    assert!(registered(&api).await.is_empty());
    // A manifest declaring more indexes than one user may: refused in one request, not
    // registered.
    let per = monodit_core::manifest::MAX_INDEXES;
    let fields: Vec<String> = (0..per).map(|i| format!("\"f{i}\"")).collect();
    let collections: Vec<String> = (0..monodit_core::limits::MAX_INDEX_DECLARATIONS_PER_USER / per
        + 1)
        .map(|c| format!(r#""c{c}": {{"indexes": [{}]}}"#, fields.join(",")))
        .collect();
    let wide = format!(
        r#"{{"id": "wide", "storage": {{{}}}}}"#,
        collections.join(",")
    );
    let ch = web_sys::MessageChannel::new().unwrap();
    let opts = json(&format!(
        r#"{{"instanceId": "wide-1", "manifest": {wide}, "source": "https://w.example/wide.html"}}"#
    ));
    let err = rejection(host.mount_port(ch.port1(), opts)).await;
    assert_eq!(code(&err), "LIMIT_EXCEEDED");
    assert!(registered(&api).await.is_empty());
    host.close();
}
