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

mod assets;
mod calls;
mod documents;
mod frames;
mod plugins;

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

const MIXED: &str = r#"{"id": "mixed", "widgetType": "dynamic", "storage": {"bindings": [
  {"key": "settings", "backend": "d1-json", "schemaId": "mixed.settings", "schemaVersion": 1},
  {"key": "files", "backend": "r2-assets", "schemaId": "mixed.files", "schemaVersion": 1,
   "configKey": "assetBucketId"}]}}"#;

fn cb_noop() -> Function {
    Function::new_no_args("")
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
