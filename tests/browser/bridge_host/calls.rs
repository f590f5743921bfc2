//! The host's small surfaces: `ctx.cache`, `ctx.log`, and the checks on host methods' arguments.

use super::*;

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
