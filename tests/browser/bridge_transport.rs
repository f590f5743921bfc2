//! Transport and protocol in a real browser, without a backend: the widget's `connect()`
//! outside a host, the host-side server against malformed port messages, and `ctx.storage`'s
//! undeclared-collection check. (Host rules against the real server: bridge_host.rs.)
#![cfg(target_arch = "wasm32")]

use crate::bridge_support::*;
use futures::future::FutureExt;
use js_sys::{JsString, Object, Reflect};
use monodit_bridge::protocol::{Call, Request, INIT_TYPE, PROTOCOL_VERSION};
use monodit_bridge::transport::{Handler, OnDropped, Sender, Server};
use monodit_bridge::widget;
use monodit_core::Error;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

type Log<T> = Rc<RefCell<Vec<T>>>;

/// A server whose router answers `config` and records what reached it: everything that is
/// not `config` reaching the router would be a validation hole.
fn echo_server(port: web_sys::MessagePort) -> (Server, Log<String>, Log<Error>) {
    let routed = Rc::new(RefCell::new(Vec::new()));
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let r = routed.clone();
    let handler: Handler = Rc::new(move |req: Request, _s: Sender| {
        r.borrow_mut()
            .push(format!("{:?}", std::mem::discriminant(&req.call)));
        let is_config = matches!(req.call, Call::Config);
        async move {
            if is_config {
                Ok(JsValue::from_str("served"))
            } else {
                Ok(JsValue::from_str("routed"))
            }
        }
        .boxed_local()
    });
    let d = dropped.clone();
    let on_dropped: OnDropped = Rc::new(move |e| d.borrow_mut().push(e));
    (Server::new(port, handler, on_dropped), routed, dropped)
}

fn req(id: f64, op: &JsValue, args: &JsValue) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"id".into(), &JsValue::from_f64(id)).unwrap();
    Reflect::set(&o, &"op".into(), op).unwrap();
    Reflect::set(&o, &"args".into(), args).unwrap();
    o.into()
}

fn args(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn error_code(reply: &JsValue) -> String {
    assert_eq!(
        get(reply, "ok"),
        JsValue::FALSE,
        "expected an error reply: {}",
        stringify(reply)
    );
    get(&get(reply, "error"), "code").as_string().unwrap()
}

#[wasm_bindgen_test]
async fn connect_outside_a_host_rejects_not_embedded() {
    // The test page is the top-level window: no parent, so connect() fails at once.
    let err = rejection(widget::connect(None)).await;
    assert_eq!(code(&err), "NOT_EMBEDDED");
    assert!(get(&err, "detail")
        .as_string()
        .unwrap()
        .contains("not embedded"));
}

#[wasm_bindgen_test]
async fn malformed_port_messages_get_errors_and_the_server_keeps_serving() {
    let ch = web_sys::MessageChannel::new().unwrap();
    let (_server, routed, dropped) = echo_server(ch.port1());
    let peer = RawPeer::new(ch.port2());
    let op = |s: &str| JsValue::from_str(s);
    let fifty_mb: JsValue = JsString::from("x").repeat(50 * 1024 * 1024).into();

    // No usable id: dropped (reported to the host), nobody to answer.
    peer.send(&JsValue::from_str("garbage"));
    peer.send(&JsValue::from_f64(42.0));
    peer.send(&json(r#"[1, "store.get"]"#));
    peer.send(&json(r#"{"op": "config"}"#));
    peer.send(&json(r#"{"id": -1, "op": "config"}"#));
    peer.send(&json(r#"{"id": 1.5, "op": "config"}"#));
    peer.send(&json(r#"{"id": "7", "op": "config"}"#));
    peer.send(&json(r#"{"id": 1e300, "op": "config"}"#));

    // Usable id: an error reply each.
    peer.send(&req(1.0, &JsValue::from_f64(42.0), &JsValue::UNDEFINED));
    peer.send(&req(2.0, &op("store.drop"), &JsValue::UNDEFINED));
    peer.send(&req(3.0, &fifty_mb, &JsValue::UNDEFINED));
    peer.send(&req(
        4.0,
        &op("store.set"),
        &args(&[("value", fifty_mb.clone())]),
    ));
    peer.send(&req(
        5.0,
        &op("cache.set"),
        &args(&[("key", op("k")), ("value", fifty_mb.clone())]),
    ));
    peer.send(&req(
        6.0,
        &op("store.get"),
        &args(&[("namespace", fifty_mb.clone())]),
    ));
    peer.send(&req(
        7.0,
        &op("store.get"),
        &args(&[("namespace", JsValue::from_f64(7.0))]),
    ));
    peer.send(&req(
        8.0,
        &op("store.set"),
        &json(r#"{"value": {"ok": [1, 2]}, "namespace": []}"#),
    ));
    peer.send(&req(
        9.0,
        &op("store.set"),
        &args(&[("value", json(r#"{"a": 1}"#)), ("binding", JsValue::TRUE)]),
    ));
    let nan = args(&[("n", JsValue::from_f64(f64::NAN))]);
    peer.send(&req(10.0, &op("store.set"), &args(&[("value", nan)])));
    let cyclic = Object::new();
    Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    peer.send(&req(
        11.0,
        &op("store.set"),
        &args(&[("value", cyclic.into())]),
    ));
    peer.send(&req(
        12.0,
        &op("store.set"),
        &args(&[("value", js_sys::Date::new_0().into())]),
    ));
    peer.send(&req(
        13.0,
        &op("storage.putMany"),
        &json(r#"{"collection": "forms", "items": "x"}"#),
    ));
    peer.send(&req(
        14.0,
        &op("storage.get"),
        &json(r#"{"collection": "forms"}"#),
    ));
    peer.send(&req(
        15.0,
        &op("storage.query"),
        &json(r#"{"collection": "forms", "options": {"limit": "ten"}}"#),
    ));
    peer.send(&req(
        16.0,
        &op("assets.upload"),
        &json(r#"{"file": "not a blob"}"#),
    ));
    peer.send(&req(
        17.0,
        &op("store.subscribe"),
        &json(r#"{"subscription": -3}"#),
    ));
    peer.send(&req(18.0, &op("config"), &json("[1]")));
    peer.send(&req(
        19.0,
        &op("cache.set"),
        &json(r#"{"key": "k", "value": 1, "ttlMs": -5}"#),
    ));
    peer.send(&req(
        20.0,
        &op("storage.getMany"),
        &json(r#"{"collection": "forms", "ids": [1, 2]}"#),
    ));

    let expected = [
        (1.0, "INVALID_ARGUMENT"),
        (2.0, "INVALID_ARGUMENT"),
        (3.0, "INVALID_ARGUMENT"),
        (4.0, "PAYLOAD_TOO_LARGE"),
        (5.0, "PAYLOAD_TOO_LARGE"),
        (6.0, "INVALID_ARGUMENT"),
        (7.0, "INVALID_ARGUMENT"),
        (8.0, "INVALID_ARGUMENT"),
        (9.0, "INVALID_ARGUMENT"),
        (10.0, "INVALID_ARGUMENT"),
        (11.0, "INVALID_ARGUMENT"),
        (12.0, "INVALID_ARGUMENT"),
        (13.0, "INVALID_ARGUMENT"),
        (14.0, "INVALID_ARGUMENT"),
        (15.0, "INVALID_ARGUMENT"),
        (16.0, "INVALID_ARGUMENT"),
        (17.0, "INVALID_ARGUMENT"),
        (18.0, "INVALID_ARGUMENT"),
        (19.0, "INVALID_ARGUMENT"),
        (20.0, "INVALID_ARGUMENT"),
    ];
    for (id, want) in expected {
        let reply = peer.reply(id).await;
        assert_eq!(
            error_code(&reply),
            want,
            "request {id}: {}",
            stringify(&reply)
        );
        assert!(get(&get(&reply, "error"), "message")
            .as_string()
            .is_some_and(|m| !m.is_empty()));
    }
    // Nothing malformed reached the router.
    assert!(routed.borrow().is_empty(), "routed: {:?}", routed.borrow());

    // Still serving afterwards.
    peer.send(&req(100.0, &op("config"), &JsValue::UNDEFINED));
    let reply = peer.reply(100.0).await;
    assert_eq!(get(&reply, "ok"), JsValue::TRUE);
    assert_eq!(get(&reply, "value").as_string().as_deref(), Some("served"));
    assert_eq!(
        dropped.borrow().len(),
        9,
        "every id-less message was reported, none answered (the array is a batch: 2)"
    );
    let answered_without_id = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "id").is_undefined())
        .count();
    assert_eq!(answered_without_id, 0);
}

#[wasm_bindgen_test]
async fn closed_server_goes_silent() {
    let ch = web_sys::MessageChannel::new().unwrap();
    let (server, _routed, _dropped) = echo_server(ch.port1());
    let peer = RawPeer::new(ch.port2());
    peer.send(&req(1.0, &JsValue::from_str("config"), &JsValue::UNDEFINED));
    peer.reply(1.0).await;
    server.close();
    peer.send(&req(2.0, &JsValue::from_str("config"), &JsValue::UNDEFINED));
    sleep(200).await;
    assert!(peer
        .inbox
        .borrow()
        .iter()
        .all(|m| get(m, "id").as_f64() != Some(2.0)));
}

/// A hand-written host end: sends the init message the real Host sends.
fn init_message(collections: &[&str]) -> JsValue {
    let names: js_sys::Array = collections.iter().map(|c| JsValue::from_str(c)).collect();
    args(&[
        ("type", JsValue::from_str(INIT_TYPE)),
        ("version", JsValue::from(PROTOCOL_VERSION)),
        ("instanceId", JsValue::from_str("w1")),
        ("kind", JsValue::from_str("widget")),
        ("config", json(r#"{"storageNamespace": "shared"}"#)),
        ("collections", names.into()),
        ("bindings", json("[]")),
    ])
}

/// A widget connected to a hand-written host end (a `RawPeer` that sent the init message
/// declaring `collections`).
async fn raw_host_and_widget(collections: &[&str]) -> (RawPeer, widget::Ctx) {
    let ch = web_sys::MessageChannel::new().unwrap();
    let host = RawPeer::new(ch.port1());
    host.send(&init_message(collections));
    let ctx = widget::connect_port(ch.port2(), 2000)
        .await
        .expect("connects");
    (host, ctx)
}

#[wasm_bindgen_test]
async fn storage_proxy_throws_undeclared_collection_synchronously() {
    let (host, ctx) = raw_host_and_widget(&["submissions", "forms"]).await;
    assert_eq!(ctx.instance_id(), "w1");
    assert_eq!(
        get(&ctx.config(), "storageNamespace")
            .as_string()
            .as_deref(),
        Some("shared")
    );
    let storage = ctx.storage();
    // Declared: a collection object with every StorageCollection method (core's list).
    let subs = Reflect::get(&storage, &"submissions".into()).unwrap();
    for m in monodit_core::ops::CollectionMethod::ALL.map(|m| m.as_str()) {
        assert!(get(&subs, m).is_function(), "submissions.{m}");
    }
    // Undeclared: throws at property access, before anything is sent.
    let err = Reflect::get(&storage, &"comments".into()).expect_err("undeclared access throws");
    assert_eq!(code(&err), "UNDECLARED_COLLECTION");
    // Harmless probes never throw.
    assert!(Reflect::get(&storage, &"then".into())
        .unwrap()
        .is_undefined());
    assert!(Reflect::get(&storage, &js_sys::Symbol::iterator())
        .unwrap()
        .is_undefined());
    assert!(!Reflect::has(&storage, &"comments".into()).unwrap());
    let keys = Object::keys(storage.unchecked_ref::<Object>());
    assert_eq!(stringify(&keys), r#"["submissions","forms"]"#);
    // Nothing crossed the port for the undeclared access (only the widget's `config` call
    // after init).
    assert!(host
        .inbox
        .borrow()
        .iter()
        .all(|m| get(m, "op").as_string().as_deref() == Some("config")));
}

#[wasm_bindgen_test]
async fn widget_rejects_a_host_with_another_protocol_version() {
    let ch = web_sys::MessageChannel::new().unwrap();
    let host = RawPeer::new(ch.port1());
    let init = init_message(&[]);
    Reflect::set(
        &init,
        &"version".into(),
        &JsValue::from(PROTOCOL_VERSION + 1),
    )
    .unwrap();
    host.send(&init);
    let err = rejection(widget::connect_port_js(ch.port2())).await;
    assert_eq!(code(&err), "UNSUPPORTED_PROTOCOL");
}

#[wasm_bindgen_test]
async fn widget_calls_reject_with_the_hosts_error_code() {
    let (host, ctx) = raw_host_and_widget(&[]).await;
    let pending = ctx.cache().keys();
    // (The widget's own `config` call after init comes first; see `on_client_message`.)
    let keys_request = |inbox: &Vec<JsValue>| {
        inbox
            .iter()
            .find(|m| get(m, "op").as_string().as_deref() == Some("cache.keys"))
            .cloned()
    };
    wait_until("the cache.keys request", 2000, || {
        keys_request(&host.inbox.borrow()).is_some()
    })
    .await;
    let sent = keys_request(&host.inbox.borrow()).unwrap();
    let reply = args(&[
        ("id", get(&sent, "id")),
        ("ok", JsValue::FALSE),
        (
            "error",
            json(r#"{"code": "QUOTA_EXCEEDED", "message": "over", "detail": {"limit": 1}}"#),
        ),
    ]);
    host.send(&reply);
    let err = rejection(pending).await;
    assert_eq!(code(&err), "QUOTA_EXCEEDED");
    assert_eq!(get(&err, "detail").as_string().as_deref(), Some("over"));
    assert_eq!(get(&get(&err, "data"), "limit").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
fn typescript_lists_every_error_code() {
    for code in monodit_core::ErrorCode::ALL {
        let quoted = format!("\"{}\"", code.as_str());
        assert!(
            monodit_bridge::errors::ERRORS_TS.contains(&quoted),
            "ErrorCode in the .d.ts lacks {quoted}"
        );
    }
}

#[wasm_bindgen_test]
async fn calls_time_out_or_close_instead_of_hanging() {
    let (_host, ctx) = raw_host_and_widget(&[]).await;
    // A host that never answers: TIMEOUT, not a promise pending forever.
    ctx.set_call_timeout(300);
    let err = rejection(ctx.cache().keys()).await;
    assert_eq!(code(&err), "TIMEOUT");
    // Closing rejects what is still pending with CLOSED, and later calls too.
    ctx.set_call_timeout(60_000);
    let pending = ctx.cache().keys();
    ctx.close();
    assert_eq!(code(&rejection(pending).await), "CLOSED");
    assert_eq!(code(&rejection(ctx.store().get(None)).await), "CLOSED");
}

#[wasm_bindgen_test]
async fn a_flood_of_calls_is_capped_per_port() {
    let ch = web_sys::MessageChannel::new().unwrap();
    // A router that never answers: every accepted call stays in flight.
    let handler: Handler =
        Rc::new(|_req: Request, _s: Sender| futures::future::pending().boxed_local());
    let _server = Server::new(ch.port1(), handler, Rc::new(|_| {}));
    let peer = RawPeer::new(ch.port2());
    let max = monodit_bridge::protocol::MAX_IN_FLIGHT as u32;
    for id in 0..max + 5 {
        peer.send(&req(
            f64::from(id),
            &JsValue::from_str("config"),
            &JsValue::UNDEFINED,
        ));
    }
    for id in max..max + 5 {
        let reply = peer.reply(f64::from(id)).await;
        assert_eq!(error_code(&reply), "RATE_LIMITED");
    }
    // The first MAX_IN_FLIGHT were accepted (no reply yet), none refused.
    let early_refusals = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "id").as_f64().is_some_and(|i| i < f64::from(max)))
        .count();
    assert_eq!(early_refusals, 0);
}

#[wasm_bindgen_test]
async fn queued_writes_give_their_slot_back_and_have_a_cap_of_their_own() {
    let ch = web_sys::MessageChannel::new().unwrap();
    // A router that reports every call queued and never answers: a widget whose writes wait
    // for a server that is away.
    let handler: Handler = Rc::new(|req: Request, s: Sender| {
        s.queued(req.id);
        futures::future::pending().boxed_local()
    });
    let _server = Server::new(ch.port1(), handler, Rc::new(|_| {}));
    let peer = RawPeer::new(ch.port2());
    let cap = monodit_bridge::protocol::MAX_QUEUED_WRITES as u32;
    let config = JsValue::from_str("config");
    // Far past the in-flight cap, up to the queued cap: none is refused.
    for id in 0..cap {
        peer.send(&req(f64::from(id), &config, &JsValue::UNDEFINED));
    }
    // The next one is past the queued-writes cap.
    peer.send(&req(f64::from(cap), &config, &JsValue::UNDEFINED));
    let reply = peer.reply(f64::from(cap)).await;
    assert_eq!(error_code(&reply), "RATE_LIMITED");
    let refused: Vec<f64> = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "ok") == JsValue::FALSE)
        .filter_map(|m| get(m, "id").as_f64())
        .collect();
    assert_eq!(refused, [f64::from(cap)], "only the call past the cap");
    let queued_events = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "event").as_string().as_deref() == Some("queued"))
        .count();
    assert_eq!(
        queued_events, cap as usize,
        "each write was reported queued"
    );
    // A call whose id is still running on this port is refused, not run twice.
    peer.send(&req(5.0, &config, &JsValue::UNDEFINED));
    let dup = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "id").as_f64() == Some(5.0) && !get(m, "ok").is_undefined())
        .count();
    assert_eq!(dup, 0, "not answered before it arrives");
    let reply = peer.reply(5.0).await;
    assert_eq!(error_code(&reply), "INVALID_ARGUMENT");
}

#[wasm_bindgen_test]
async fn a_widget_making_more_calls_than_the_in_flight_cap_sends_them_in_order_as_slots_free() {
    let (host, ctx) = raw_host_and_widget(&[]).await;
    let max = monodit_bridge::protocol::MAX_IN_FLIGHT;
    let n = 3 * max;
    let calls: Vec<js_sys::Promise> = (0..n).map(|_| ctx.cache().keys()).collect();
    let requests = |inbox: &Vec<JsValue>| -> Vec<f64> {
        inbox
            .iter()
            .filter(|m| get(m, "op").as_string().as_deref() == Some("cache.keys"))
            .filter_map(|m| get(m, "id").as_f64())
            .collect()
    };
    sleep(100).await;
    // One slot stays free for a new port's hello.
    let sent = requests(&host.inbox.borrow());
    assert_eq!(sent.len(), max - 1, "no more than the host takes at once");
    // The host answers each as it arrives: the rest follow, in the order they were made.
    let mut answered = 0;
    let mut waits = 0;
    while answered < n {
        let sent = requests(&host.inbox.borrow());
        if answered == sent.len() {
            waits += 1;
            assert!(
                waits < 1000,
                "only {answered} of {n} calls reached the host"
            );
            sleep(5).await;
            continue;
        }
        for id in &sent[answered..] {
            host.send(&args(&[
                ("id", JsValue::from_f64(*id)),
                ("ok", JsValue::TRUE),
                ("value", JsValue::from_f64(*id)),
            ]));
        }
        answered = sent.len();
        assert!(answered <= n);
    }
    let sent = requests(&host.inbox.borrow());
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "sent in call order");
    for (p, id) in calls.into_iter().zip(sent) {
        assert_eq!(
            ok(p).await.as_f64(),
            Some(id),
            "each call got its own answer"
        );
    }
}

#[wasm_bindgen_test]
async fn a_batch_is_answered_as_a_batch_and_each_entry_is_checked_alone() {
    let ch = web_sys::MessageChannel::new().unwrap();
    // A router that says something before each answer: two messages in one task.
    let handler: Handler = Rc::new(|req: Request, s: Sender| {
        s.post(&args(&[("event", "note".into()), ("id", req.id.into())]));
        async { Ok(JsValue::from_str("served")) }.boxed_local()
    });
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let d = dropped.clone();
    let _server = Server::new(
        ch.port1(),
        handler,
        Rc::new(move |e| d.borrow_mut().push(e)),
    );
    let peer = RawPeer::new(ch.port2());
    let config = JsValue::from_str("config");
    // A port that sends single messages gets single messages back.
    peer.send(&req(1.0, &config, &JsValue::UNDEFINED));
    peer.reply(1.0).await;
    sleep(50).await;
    assert_eq!(peer.events.get(), 2, "the note and the answer, one by one");
    assert_eq!(peer.inbox.borrow().len(), 2);
    // A batch: good and bad entries side by side, each handled as if it came alone.
    let batch: js_sys::Array = [
        req(2.0, &config, &JsValue::UNDEFINED),
        req(3.0, &JsValue::from_str("no.such.op"), &JsValue::UNDEFINED),
        JsValue::from_f64(7.0),
        req(4.0, &config, &JsValue::UNDEFINED),
    ]
    .into_iter()
    .collect();
    peer.send(&batch);
    assert_eq!(
        get(&peer.reply(2.0).await, "value").as_string().as_deref(),
        Some("served")
    );
    assert_eq!(error_code(&peer.reply(3.0).await), "INVALID_ARGUMENT");
    assert_eq!(
        get(&peer.reply(4.0).await, "value").as_string().as_deref(),
        Some("served")
    );
    sleep(50).await;
    assert_eq!(
        dropped.borrow().len(),
        1,
        "the entry without an id was reported"
    );
    // Everything the host said in that task came as one message, in order.
    assert_eq!(peer.events.get(), 3, "one batch back");
    let said: Vec<String> = peer.inbox.borrow()[2..]
        .iter()
        .map(|m| match get(m, "event").as_string() {
            Some(e) => format!("{e} {}", get(m, "id").as_f64().unwrap()),
            None => format!("reply {}", get(m, "id").as_f64().unwrap()),
        })
        .collect();
    assert_eq!(
        said,
        ["note 2", "reply 3", "note 4", "reply 2", "reply 4"],
        "in the order the host said them"
    );
}

#[wasm_bindgen_test]
async fn a_flood_inside_one_batch_closes_the_port() {
    let ch = web_sys::MessageChannel::new().unwrap();
    let (_server, routed, dropped) = echo_server(ch.port1());
    let peer = RawPeer::new(ch.port2());
    // Garbage with ids (no op): each entry is refused, and a batch does not escape the
    // flood limit.
    let n = 5 * monodit_bridge::protocol::MAX_REFUSED_PER_SECOND;
    let batch: js_sys::Array = (0..n)
        .map(|i| args(&[("id", f64::from(i).into())]))
        .collect();
    peer.send(&batch);
    wait_until("the port closes", 5000, || {
        peer.inbox
            .borrow()
            .iter()
            .any(|m| get(m, "event").as_string().as_deref() == Some("closed"))
    })
    .await;
    let answered = peer
        .inbox
        .borrow()
        .iter()
        .filter(|m| !get(m, "id").is_undefined())
        .count();
    assert!(
        answered <= 4 * monodit_bridge::protocol::MAX_REFUSED_PER_SECOND as usize + 1,
        "entries after the close were not read ({answered} answered)"
    );
    assert!(routed.borrow().is_empty(), "no garbage reached the router");
    assert_eq!(
        dropped.borrow().last().map(|e| e.code.as_str()),
        Some("RATE_LIMITED")
    );
    // Nothing more is read once it is closed.
    peer.send(&req(1.0, &JsValue::from_str("config"), &JsValue::UNDEFINED));
    sleep(100).await;
    assert!(routed.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn calls_made_in_one_task_cross_the_port_as_one_batch() {
    let (host, ctx) = raw_host_and_widget(&[]).await;
    sleep(50).await;
    let before = host.events.get(); // the widget's `config` call after init
    let calls: Vec<js_sys::Promise> = (0..5).map(|_| ctx.cache().keys()).collect();
    sleep(100).await;
    assert_eq!(host.events.get(), before + 1, "five calls, one message");
    let ids: Vec<f64> = host
        .inbox
        .borrow()
        .iter()
        .filter(|m| get(m, "op").as_string().as_deref() == Some("cache.keys"))
        .filter_map(|m| get(m, "id").as_f64())
        .collect();
    assert_eq!(ids.len(), 5);
    // Answered by one batch, in reverse: each call still gets its own answer.
    let answers: js_sys::Array = ids
        .iter()
        .rev()
        .map(|id| {
            args(&[
                ("id", JsValue::from_f64(*id)),
                ("ok", JsValue::TRUE),
                ("value", JsValue::from_f64(*id)),
            ])
        })
        .collect();
    host.send(&answers);
    for (p, id) in calls.into_iter().zip(ids) {
        assert_eq!(ok(p).await.as_f64(), Some(id));
    }
}
