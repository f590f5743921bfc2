//! Assets through the host: uploads as Blobs, lists, subscriptions, explicit and theme buckets, topology.

use super::*;

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
