//! Real iframes: sandboxed and module widgets, re-handshakes, navigation, floods and port hand-offs.

use super::*;

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
    // Replies carry `ok`; `{event: "queued", id: 1}` comes first and is not one.
    if (d.id === 1 && "ok" in d) port.postMessage({id: 2, op: "store.get"});
    if (d.id === 2 && "ok" in d) report({ok: d.ok, instanceId: "?", value: d.value && d.value.value, origin: String(self.origin)});
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
