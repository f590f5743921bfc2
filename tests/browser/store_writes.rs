//! `ctx.store` writes as a widget sees them, through a real Host against the REAL backend
//! (scripts/with-server.sh): an offline `set()` stays pending past the call timeout,
//! `set(value, {ifVersion})` and `update(fn)` never lose another device's write, and
//! `handle.setConfig` refuses an incompatible bucket.
#![cfg(target_arch = "wasm32")]

use crate::bridge_support::*;
use js_sys::{Function, Promise};
use monodit_bridge::host::Host;
use monodit_bridge::http::Api;
use monodit_bridge::sync::{BucketRef, Engine};
use monodit_bridge::widget::{self, Ctx};
use monodit_core::api::{Contract, Plan, PutDocument};
use monodit_core::buckets::Backend;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
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

/// A fresh Pro user: its Api (a raw client: "another device") and user id.
async fn user() -> (Api, String) {
    let u = Api::dev_new_user(server(), Plan::Pro)
        .await
        .expect("POST /v1/dev/users");
    (Api::new(server(), &u.token), u.user_id)
}

/// Mounts an instance on a MessageChannel and connects a widget ctx to the other end.
async fn mount(host: &Host, id: &str, manifest: &str, config: &str) -> (JsValue, Ctx) {
    let ch = web_sys::MessageChannel::new().unwrap();
    let opts = json(&format!(
        r#"{{"instanceId": "{id}", "manifest": {manifest}, "config": {config}}}"#
    ));
    let handle = ok(host.mount_port(ch.port1(), opts)).await;
    let ctx = widget::connect_port(ch.port2(), 5000)
        .await
        .expect("widget connects");
    (handle, ctx)
}

fn method(obj: &JsValue, name: &str) -> Function {
    get(obj, name)
        .dyn_into()
        .unwrap_or_else(|_| panic!("{name} is a method"))
}

fn set_config(handle: &JsValue, config: &str) -> Promise {
    method(handle, "setConfig")
        .call1(handle, &json(config))
        .unwrap()
        .unchecked_into()
}

fn notes_put(value: serde_json::Value) -> PutDocument {
    PutDocument {
        value,
        schema_id: "notes.plaintext".into(),
        schema_version: 1,
        mutation_id: None,
        expected_version: None,
    }
}

/// A promise's outcome, recorded as soon as it settles (`None` while pending).
type Outcome = Rc<RefCell<Option<Result<JsValue, JsValue>>>>;

fn watch(p: Promise) -> Outcome {
    let out: Outcome = Rc::new(RefCell::new(None));
    let o = out.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let r = JsFuture::from(p).await;
        *o.borrow_mut() = Some(r);
    });
    out
}

/// Records the `meta.kind` of every store event of `ns` (`NULL`: the bound bucket).
fn kinds_recorder(ctx: &Ctx, ns: JsValue) -> (Rc<RefCell<Vec<String>>>, Function) {
    let kinds = Rc::new(RefCell::new(Vec::new()));
    let k = kinds.clone();
    let cb = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |_v: JsValue, m: JsValue| {
        k.borrow_mut()
            .push(get(&m, "kind").as_string().unwrap_or_default());
    });
    let off = ctx
        .store()
        .subscribe(ns, cb.into_js_value().unchecked_into(), None);
    (kinds, off)
}

/// A backend that never answers (nothing listens on port 9): the browser is offline for it.
fn dead_api() -> Api {
    Api::new("http://127.0.0.1:9", "token-unused-offline")
}

/// Writes `value` to bucket `ns` from a page that is online and closes it, so this browser's
/// mirror knows the document before the offline part of a test.
async fn write_online(api: &Api, ns: &JsValue, instance: &str, value: &str) {
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let (_h, ctx) = mount(&host, instance, NOTES, "{}").await;
    ok(ctx.store().set(json(value), Some(ns.clone()))).await;
    engine.close();
}

#[wasm_bindgen_test]
async fn an_offline_set_stays_pending_past_the_call_timeout_and_lands_later() {
    let (api, user) = user().await;
    // The host page is offline: its backend does not answer.
    let dead = dead_api();
    let engine = Engine::open_with_user(dead.clone(), &user).await;
    let host = Host::from_engine(engine.clone());
    let (_h, ctx) = mount(&host, "note-off", NOTES, "{}").await;
    // A short call timeout, so a wrongly timed-out write would show within the wait below.
    ctx.set_call_timeout(200);
    let (kinds, _off) = kinds_recorder(&ctx, JsValue::NULL);
    let result = watch(ctx.store().set(json(r#"{"text": "saved offline"}"#), None));
    wait_until("the optimistic event", 5000, || {
        kinds.borrow().iter().any(|k| k == "optimistic")
    })
    .await;
    wait_until("a send attempt failed", 5000, || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    // Ten call timeouts later the write is still queued, and so is the promise.
    sleep(2000).await;
    assert!(
        result.borrow().is_none(),
        "a queued write is never reported as failed: {:?}",
        result.borrow().as_ref().map(|r| r
            .as_ref()
            .map_err(|e| get(e, "code").as_string())
            .map(stringify))
    );
    assert_eq!(engine.pending_writes(), 1);
    // A call the host does answer quickly still works (and is still timed).
    let read = ok(ctx.store().get(None)).await;
    assert_eq!(stringify(&read), r#"{"text":"saved offline"}"#);

    // The page goes away: the promise settles CLOSED; the next page sends the write.
    engine.close();
    wait_until("set() settled by close", 5000, || result.borrow().is_some()).await;
    let err = result.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(code(&err), "CLOSED");
    let online = Engine::open(api.clone()).await.unwrap();
    wait_until("the write reached the server", 10_000, || {
        online.pending_writes() == 0
    })
    .await;
    let docs = api.buckets().await.unwrap();
    let written = docs
        .iter()
        .find(|b| b.contract.backend == Backend::D1Json)
        .expect("the widget's bucket exists on the server");
    let snap = online
        .doc_get(&BucketRef {
            bucket_id: written.bucket_id.clone(),
            contract: written.contract.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        (snap.value, snap.version),
        (serde_json::json!({"text": "saved offline"}), 1)
    );
    online.close();
}

#[wasm_bindgen_test]
async fn set_if_version_rejects_conflict_with_the_current_document() {
    let (api, _user) = user().await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let ns = format!("race-{}", (js_sys::Math::random() * 1e9) as u64);
    let opts = |v: u64| json(&format!(r#"{{"namespace": "{ns}", "ifVersion": {v}}}"#));
    let (_h, ctx) = mount(&host, "note-if", NOTES, "{}").await;

    // 0 = never written: creates it.
    let first = ok(ctx.store().set(json(r#""a""#), Some(opts(0)))).await;
    assert_eq!(get(&first, "version").as_f64(), Some(1.0));
    // Another device writes version 2; this host has not seen it.
    let v2 = api
        .put_document(&ns, &notes_put(serde_json::json!("b")))
        .await;
    assert_eq!(v2.unwrap().version, 2);
    let err = rejection(ctx.store().set(json(r#""c""#), Some(opts(1)))).await;
    assert_eq!(code(&err), "CONFLICT");
    let data = get(&err, "data");
    assert_eq!(stringify(&get(&data, "value")), r#""b""#);
    assert_eq!(get(&data, "version").as_f64(), Some(2.0));
    assert_eq!(
        api.document_meta(&ns).await.unwrap().version,
        2,
        "not written"
    );
    // The host now knows version 2: an older ifVersion is refused without a request.
    let puts = api.counters().document_puts.get();
    let err = rejection(ctx.store().set(json(r#""d""#), Some(opts(1)))).await;
    assert_eq!(code(&err), "CONFLICT");
    assert_eq!(get(&get(&err, "data"), "version").as_f64(), Some(2.0));
    assert_eq!(api.counters().document_puts.get(), puts);
    // On the current version it applies.
    let done = ok(ctx.store().set(json(r#""e""#), Some(opts(2)))).await;
    assert_eq!(get(&done, "version").as_f64(), Some(3.0));
    // A plain namespace string still works as the second argument.
    let plain = ok(ctx
        .store()
        .set(json(r#""f""#), Some(JsValue::from_str(&ns))))
    .await;
    assert_eq!(get(&plain, "version").as_f64(), Some(4.0));
    // A bad ifVersion is INVALID_ARGUMENT, never a write.
    let bad = json(&format!(r#"{{"namespace": "{ns}", "ifVersion": -1}}"#));
    let err = rejection(ctx.store().set(json(r#""g""#), Some(bad))).await;
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    assert_eq!(api.document_meta(&ns).await.unwrap().version, 4);
    engine.close();
}

#[wasm_bindgen_test]
async fn update_reruns_on_the_servers_value_when_another_device_wrote_first() {
    let (api, _user) = user().await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let ns = format!("todo-race-{}", (js_sys::Math::random() * 1e9) as u64);
    let (_h, ctx) = mount(&host, "note-up", NOTES, "{}").await;
    let nsv = JsValue::from_str(&ns);
    ok(ctx
        .store()
        .set(json(r#"{"items": ["a"]}"#), Some(nsv.clone())))
    .await;

    // The update function adds "c"; while it runs the first time, another device adds "b".
    let calls = Rc::new(Cell::new(0u32));
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let (c, s, other) = (calls.clone(), seen.clone(), api.clone());
    let ns2 = ns.clone();
    let f = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |current: JsValue| {
        c.set(c.get() + 1);
        s.borrow_mut().push(stringify(&current));
        let items = get(&current, "items");
        let next = js_sys::Array::from(&items);
        next.push(&JsValue::from_str("c"));
        let next = js_sys::Object::from(json(&format!(
            r#"{{"items": {}}}"#,
            stringify(&next.into())
        )));
        let first = c.get() == 1;
        let (other, ns) = (other.clone(), ns2.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            if first {
                other
                    .put_document(&ns, &notes_put(serde_json::json!({"items": ["a", "b"]})))
                    .await
                    .expect("the other device's write");
            }
            Ok(next.into())
        })
        .into()
    });
    let f: Function = f.into_js_value().unchecked_into();
    let result = ok(ctx.store().update(f, Some(nsv.clone()))).await;
    assert_eq!(calls.get(), 2, "ran again after the conflict");
    assert_eq!(
        seen.borrow().clone(),
        vec![r#"{"items":["a"]}"#, r#"{"items":["a","b"]}"#]
    );
    assert_eq!(
        stringify(&get(&result, "value")),
        r#"{"items":["a","b","c"]}"#
    );
    assert_eq!(get(&result, "version").as_f64(), Some(3.0));
    let meta = api.document_meta(&ns).await.unwrap();
    assert_eq!(meta.version, 3);

    // A function that throws rejects with its error and writes nothing.
    let boom: Function = Function::new_with_args("v", "throw new Error('boom')");
    let err = rejection(ctx.store().update(boom, Some(nsv))).await;
    assert_eq!(get(&err, "message").as_string().as_deref(), Some("boom"));
    assert_eq!(api.document_meta(&ns).await.unwrap().version, 3);
    engine.close();
}

#[wasm_bindgen_test]
async fn set_config_onto_an_incompatible_bucket_rejects_and_keeps_the_old_binding() {
    let (api, user) = user().await;
    let notes_bucket = format!("notes-{}", (js_sys::Math::random() * 1e9) as u64);
    api.put_document(&notes_bucket, &notes_put(serde_json::json!("a note")))
        .await
        .unwrap();
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let (handle, todo) = mount(&host, "todo-cfg", TODO, "{}").await;
    ok(todo.store().set(json(r#"{"items": ["keep"]}"#), None)).await;

    let err = rejection(set_config(
        &handle,
        &format!(r#"{{"storageNamespace": "{notes_bucket}"}}"#),
    ))
    .await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    assert!(
        get(&get(&handle, "config"), "storageNamespace").is_undefined(),
        "the old config stays"
    );
    assert_eq!(
        stringify(&ok(todo.store().get(None)).await),
        r#"{"items":["keep"]}"#
    );
    assert!(get(&todo.config(), "storageNamespace").is_undefined());
    engine.close();

    // Offline the backend cannot refuse it, but the contract this browser knows can.
    let seen = Engine::open(api.clone()).await.unwrap();
    let notes_ref = BucketRef {
        bucket_id: notes_bucket.clone(),
        contract: Contract {
            backend: Backend::D1Json,
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
        },
    };
    seen.doc_get(&notes_ref).await.unwrap();
    seen.close();
    let dead = dead_api();
    let offline = Engine::open_with_user(dead, &user).await;
    let host = Host::from_engine(offline.clone());
    let (handle, _todo) = mount(&host, "todo-cfg", TODO, "{}").await;
    let err = rejection(set_config(
        &handle,
        &format!(r#"{{"storageNamespace": "{notes_bucket}"}}"#),
    ))
    .await;
    assert_eq!(code(&err), "INCOMPATIBLE_BUCKET");
    // A compatible (new) bucket is accepted offline.
    ok(set_config(
        &handle,
        r#"{"storageNamespace": "todo-elsewhere"}"#,
    ))
    .await;
    offline.close();
}

/// An update `fn` that appends `item` to `items` (a new list when the document is empty).
fn append(item: &str) -> Function {
    Function::new_with_args(
        "v",
        &format!("return {{ items: [...((v && v.items) || []), {item:?}] }};"),
    )
}

/// The items of a `{items: [...]}` document, sorted (the order of racing writers is theirs).
fn sorted_items(v: &serde_json::Value) -> Vec<String> {
    let mut items: Vec<String> = v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    items
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Starts `update(append(item))` for every item at once, without waiting in between (as a
/// user clicking "add" quickly does), and awaits them all.
async fn update_all_at_once(ctxs: &[&Ctx], items: &[String], ns: &JsValue) {
    let calls: Vec<Promise> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            ctxs[i % ctxs.len()]
                .store()
                .update(append(item), Some(ns.clone()))
        })
        .collect();
    for (p, item) in calls.into_iter().zip(items) {
        let r = JsFuture::from(p).await;
        assert!(
            r.is_ok(),
            "update adding {item} failed: {:?}",
            r.map_err(|e| code(&e))
        );
    }
}

#[wasm_bindgen_test]
async fn quick_updates_from_one_page_all_land_even_from_two_widgets_on_one_bucket() {
    let (api, _user) = user().await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let ns = format!("todo-quick-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    let (_a, first) = mount(&host, "todo-a", NOTES, "{}").await;
    let (_b, second) = mount(&host, "todo-b", NOTES, "{}").await;
    ok(first
        .store()
        .set(json(r#"{"items": []}"#), Some(nsv.clone())))
    .await;

    // Ten updates started together: each widget's run one at a time, the two widgets race.
    let items = names("item", 10);
    update_all_at_once(&[&first, &second], &items, &nsv).await;

    let doc = api.document(&ns, None).await.unwrap();
    let monodit_bridge::http::DocumentFetch::Fresh(doc) = doc else {
        panic!("the document exists on the server")
    };
    assert_eq!(sorted_items(&doc.value), items, "no update was lost");
    let shown = ok(second.store().get(Some(nsv))).await;
    let shown: serde_json::Value = serde_wasm_bindgen::from_value(shown).unwrap();
    assert_eq!(sorted_items(&shown), items, "every widget shows every item");
    assert_eq!(engine.pending_writes(), 0);
    engine.close();
}

#[wasm_bindgen_test]
async fn quick_updates_offline_each_apply_on_top_of_the_one_before() {
    let (api, user) = user().await;
    let ns = format!("todo-offline-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    // Online first, so this browser's mirror knows the document.
    write_online(&api, &nsv, "todo-on", r#"{"items": ["first"]}"#).await;
    // The backend stops answering: every update applies locally and stays queued.
    let dead = dead_api();
    let engine = Engine::open_with_user(dead.clone(), &user).await;
    let host = Host::from_engine(engine.clone());
    let (_h, ctx) = mount(&host, "todo-off", NOTES, "{}").await;
    let items = names("offline", 5);
    let calls: Vec<Outcome> = items
        .iter()
        .map(|item| watch(ctx.store().update(append(item), Some(nsv.clone()))))
        .collect();
    let mut want = items.clone();
    want.push("first".into());
    want.sort();
    let c = ctx.store();
    let mut shown = Vec::new();
    for _ in 0..100 {
        let v = ok(c.get(Some(nsv.clone()))).await;
        shown = sorted_items(&serde_wasm_bindgen::from_value(v).unwrap());
        if shown == want {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(
        shown, want,
        "each offline update applied on top of the one before"
    );
    assert!(
        calls.iter().all(|c| c.borrow().is_none()),
        "queued updates stay pending offline"
    );
    engine.close();

    // The next page with a backend sends them: the server gets every item.
    let online = Engine::open(api.clone()).await.unwrap();
    wait_until("the queued updates reached the server", 10_000, || {
        online.pending_writes() == 0
    })
    .await;
    let monodit_bridge::http::DocumentFetch::Fresh(doc) = api.document(&ns, None).await.unwrap()
    else {
        panic!("the document exists on the server")
    };
    assert_eq!(sorted_items(&doc.value), want, "no offline update was lost");
    online.close();
}

#[wasm_bindgen_test]
async fn quick_updates_from_two_tabs_of_one_browser_all_land() {
    // Two engines of one user in one page share what two tabs share: the mirror and its
    // outbox, the Web Lock that lets one of them flush, and the BroadcastChannel.
    let (api, user) = user().await;
    let one = Engine::open_with_user(api.clone(), &user).await;
    let two = Engine::open_with_user(api.clone(), &user).await;
    let (host1, host2) = (
        Host::from_engine(one.clone()),
        Host::from_engine(two.clone()),
    );
    let ns = format!("todo-tabs-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    let (_a, tab1) = mount(&host1, "todo-t1", NOTES, "{}").await;
    let (_b, tab2) = mount(&host2, "todo-t2", NOTES, "{}").await;
    ok(tab1
        .store()
        .set(json(r#"{"items": []}"#), Some(nsv.clone())))
    .await;
    ok(tab2.store().get(Some(nsv.clone()))).await;

    let items = names("tab", 8);
    update_all_at_once(&[&tab1, &tab2], &items, &nsv).await;
    wait_until("both tabs settled", 10_000, || {
        one.pending_writes() == 0 && two.pending_writes() == 0
    })
    .await;
    let monodit_bridge::http::DocumentFetch::Fresh(doc) = api.document(&ns, None).await.unwrap()
    else {
        panic!("the document exists on the server")
    };
    assert_eq!(sorted_items(&doc.value), items, "no tab's update was lost");
    one.close();
    two.close();
}

/// The items a widget's `get()` shows, sorted.
async fn shown_items(ctx: &Ctx, ns: &JsValue) -> Vec<String> {
    let v = ok(ctx.store().get(Some(ns.clone()))).await;
    sorted_items(&serde_wasm_bindgen::from_value(v).unwrap())
}

#[wasm_bindgen_test]
async fn an_offline_tab_keeps_showing_its_own_items_while_another_tabs_updates_queue() {
    let (api, user) = user().await;
    let ns = format!("todo-own-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    // Online first, so this browser's mirror knows the document.
    write_online(&api, &nsv, "todo-own-on", r#"{"items": ["first"]}"#).await;
    // Two tabs with the backend gone: each update applies on that tab's own view.
    let dead = dead_api();
    let one = Engine::open_with_user(dead.clone(), &user).await;
    let two = Engine::open_with_user(dead.clone(), &user).await;
    let (host1, host2) = (
        Host::from_engine(one.clone()),
        Host::from_engine(two.clone()),
    );
    let (_a, tab1) = mount(&host1, "todo-own-1", NOTES, "{}").await;
    let (_b, tab2) = mount(&host2, "todo-own-2", NOTES, "{}").await;
    // Both tabs update at once: each computes on its own view, which lacks the other's item.
    let _a1 = watch(tab1.store().update(append("tab 1: a"), Some(nsv.clone())));
    let _x = watch(tab2.store().update(append("tab 2: x"), Some(nsv.clone())));
    // Each tab reads the other's write back from the shared outbox (to send it).
    wait_until("each tab adopted the other's write", 10_000, || {
        one.pending_writes() == 2 && two.pending_writes() == 2
    })
    .await;
    let shown1 = shown_items(&tab1, &nsv).await;
    assert!(
        shown1.contains(&"tab 1: a".to_string()),
        "tab 1 still shows its own queued item: {shown1:?}"
    );
    let shown2 = shown_items(&tab2, &nsv).await;
    assert!(
        shown2.contains(&"tab 2: x".to_string()),
        "tab 2 still shows its own queued item: {shown2:?}"
    );
    // Tab 1's next update builds on what it shows, its own item included.
    let _b1 = watch(tab1.store().update(append("tab 1: b"), Some(nsv.clone())));
    wait_until("tab 1's second write is queued", 5000, || {
        one.pending_writes() == 3
    })
    .await;
    let shown1 = shown_items(&tab1, &nsv).await;
    for item in ["tab 1: a", "tab 1: b"] {
        assert!(
            shown1.contains(&item.to_string()),
            "tab 1 shows both its items: {shown1:?}"
        );
    }
    one.close();
    two.close();
}

#[wasm_bindgen_test]
async fn a_write_whose_answer_was_lost_lands_once_and_the_newer_write_after_it() {
    let (api, _user) = user().await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let ns = format!("lost-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    let (_h, ctx) = mount(&host, "note-lost", NOTES, "{}").await;
    // The server stores the first write, then drops the connection before answering (twice:
    // Chromium re-sends a PUT once by itself when a reused connection closes unanswered).
    api.dev_set_document_faults(2).await.unwrap();
    let first = watch(
        ctx.store()
            .set(json(r#"{"text": "first"}"#), Some(nsv.clone())),
    );
    wait_until("the first write was sent", 5000, || {
        api.counters().document_puts.get() >= 1
    })
    .await;
    // A newer write made while the first one's outcome is unknown.
    let second = watch(
        ctx.store()
            .set(json(r#"{"text": "second"}"#), Some(nsv.clone())),
    );
    wait_until("both writes settled", 15_000, || {
        first.borrow().is_some() && second.borrow().is_some()
    })
    .await;
    for (what, r) in [("first", &first), ("second", &second)] {
        let r = r.borrow();
        let r = r.as_ref().unwrap();
        assert!(
            r.is_ok(),
            "{what} set() failed: {:?}",
            r.as_ref().map_err(code)
        );
    }
    // Stored once each, in order: the lost answer was not a conflict for the newer write.
    let meta = api.document_meta(&ns).await.unwrap();
    assert_eq!(meta.version, 2);
    let shown = ok(ctx.store().get(Some(nsv))).await;
    assert_eq!(stringify(&shown), r#"{"text":"second"}"#);
    assert_eq!(engine.pending_writes(), 0);
    engine.close();
}

#[wasm_bindgen_test]
async fn writes_sent_as_one_put_whose_answer_was_lost_are_confirmed_not_rolled_back() {
    let (api, user) = user().await;
    let ns = format!("lost-batch-{}", (js_sys::Math::random() * 1e9) as u64);
    let nsv = JsValue::from_str(&ns);
    // Online first, so this browser's mirror knows the document.
    write_online(&api, &nsv, "note-batch-first", r#"{"text": "first"}"#).await;
    {
        // Two writes queued offline: the next page sends them as one PUT (the newest value).
        let dead = dead_api();
        let engine = Engine::open_with_user(dead, &user).await;
        let host = Host::from_engine(engine.clone());
        let (_h, ctx) = mount(&host, "note-batch-off", NOTES, "{}").await;
        let _a = watch(ctx.store().set(json(r#"{"text": "a"}"#), Some(nsv.clone())));
        let _b = watch(ctx.store().set(json(r#"{"text": "b"}"#), Some(nsv.clone())));
        wait_until("both writes are queued", 5000, || {
            engine.pending_writes() == 2
        })
        .await;
        // Their outbox entries commit in a moment (group commit); the next page reads them.
        sleep(500).await;
        engine.close();
    }
    // The server stores that PUT, then drops the connection before answering (twice:
    // Chromium re-sends a PUT once by itself when a reused connection closes unanswered).
    api.dev_set_document_faults(2).await.unwrap();
    let engine = Engine::open(api.clone()).await.unwrap();
    let host = Host::from_engine(engine.clone());
    let (_h, ctx) = mount(&host, "note-batch-on", NOTES, "{}").await;
    let (kinds, _off) = kinds_recorder(&ctx, nsv.clone());
    wait_until("the writes settled", 15_000, || {
        engine.pending_writes() == 0
    })
    .await;
    let kinds = kinds.borrow().clone();
    assert!(
        !kinds.iter().any(|k| k == "rollback"),
        "a stored write is not rolled back: {kinds:?}"
    );
    // Stored once: the same PUT went out again and was answered from the server's record.
    let meta = api.document_meta(&ns).await.unwrap();
    assert_eq!(meta.version, 2);
    let shown = ok(ctx.store().get(Some(nsv))).await;
    assert_eq!(stringify(&shown), r#"{"text":"b"}"#);
    engine.close();
}
