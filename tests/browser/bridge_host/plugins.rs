//! Plugin data through the host: collections, `ctx.kv`, plugin-id claims, instance registration and per-user limits.

use super::*;

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
