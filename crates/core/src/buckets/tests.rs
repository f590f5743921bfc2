//! Bucket ids, resolution order, contract compatibility and theme bindings.

use super::*;
use serde_json::json;

fn manifest(bindings: Value) -> Manifest {
    Manifest::parse(&json!({"id": "w", "widgetType": "dynamic", "storage": {"bindings": bindings}}))
        .unwrap()
}

fn d1(key: &str) -> Value {
    json!({"key": key, "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1})
}

fn r2(key: &str, config_key: Option<&str>) -> Value {
    let mut b = json!({"key": key, "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1});
    if let Some(k) = config_key {
        b["configKey"] = json!(k);
    }
    b
}

fn config(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn themes_get_an_implicit_binding_per_undeclared_backend() {
    let bare = Manifest::parse(&json!({"id": "aurora"})).unwrap();
    let t = with_theme_bindings(&bare);
    let sb = t.select_binding(Backend::D1Json, None).unwrap();
    let ab = t.select_binding(Backend::R2Assets, None).unwrap();
    assert_eq!(
        (sb.key.as_str(), ab.key.as_str()),
        ("theme", "theme-r2-assets")
    );
    for b in [sb, ab] {
        assert_eq!(
            (b.schema_id.as_str(), b.schema_version),
            ("theme.aurora", 1)
        );
    }
    let empty = config(json!({}));
    // Explicit names (how a theme keeps its state), else the instance's own bucket.
    assert_eq!(
        resolve_document_bucket(&t, sb, Some("palette"), &empty, "theme-1").unwrap(),
        "palette"
    );
    assert_eq!(
        resolve_asset_bucket(&t, ab, None, &empty, "theme-1").unwrap(),
        "theme-1"
    );
    // A widget's contract is not the theme's: its buckets stay out of reach.
    let widget = Contract {
        backend: Backend::D1Json,
        schema_id: "notes.plaintext".into(),
        schema_version: 1,
    };
    assert_eq!(
        check_compatible(&widget, &sb.contract()).unwrap_err().code,
        ErrorCode::IncompatibleBucket
    );
    // Declared bindings are kept as they are; only the missing backend is added.
    let m = manifest(json!([d1("primary")]));
    let t = with_theme_bindings(&m);
    assert_eq!(t.bindings.len(), 2);
    assert_eq!(t.bindings[0], m.bindings[0]);
    assert_eq!(t.binding_for(Backend::R2Assets).unwrap().key, "theme");
    assert_eq!(
        t.binding_for(Backend::R2Assets).unwrap().schema_id,
        "theme.w"
    );
}

#[test]
fn seed_document_resolution_order() {
    let m = manifest(json!([d1("primary")]));
    let b = &m.bindings[0];
    let empty = config(json!({}));
    // explicit → config.storageNamespace → instanceId
    let ns = config(json!({"storageNamespace": "team-notes"}));
    assert_eq!(
        resolve_document_bucket(&m, b, Some("explicit-name"), &ns, "inst1").unwrap(),
        "explicit-name"
    );
    assert_eq!(
        resolve_document_bucket(&m, b, None, &ns, "inst1").unwrap(),
        "team-notes"
    );
    assert_eq!(
        resolve_document_bucket(&m, b, None, &empty, "inst1").unwrap(),
        "inst1"
    );
    // "if that is empty, it falls back to ctx.instanceId"
    for blank in [json!(""), json!(null)] {
        let c = config(json!({ "storageNamespace": blank }));
        assert_eq!(
            resolve_document_bucket(&m, b, None, &c, "inst1").unwrap(),
            "inst1"
        );
    }
    assert!(is_default_bucket(&m, b, "inst1", "inst1"));
    assert!(!is_default_bucket(&m, b, "inst1", "team-notes"));
    assert_eq!(config_key(&m, b).unwrap(), "storageNamespace");
}

#[test]
fn seed_asset_resolution_order() {
    let m = manifest(json!([r2("assets", Some("assetBucketId"))]));
    let b = &m.bindings[0];
    let c = config(json!({"assetBucketId": "shared-gallery", "storageNamespace": "ignored"}));
    assert_eq!(
        resolve_asset_bucket(&m, b, None, &c, "inst1").unwrap(),
        "shared-gallery"
    );
    assert_eq!(
        resolve_asset_bucket(&m, b, None, &config(json!({"assetBucketId": ""})), "inst1").unwrap(),
        "inst1"
    );
    assert_eq!(
        resolve_asset_bucket(&m, b, None, &config(json!({})), "inst1").unwrap(),
        "inst1"
    );
    assert_eq!(
        resolve_asset_bucket(&m, b, Some("theme-bucket"), &c, "inst1").unwrap(),
        "theme-bucket"
    );
    assert_eq!(config_key(&m, b).unwrap(), "assetBucketId");
    // Using the wrong resolver is an error, not a silent mix-up.
    assert_eq!(
        resolve_document_bucket(&m, b, None, &c, "inst1")
            .unwrap_err()
            .code,
        ErrorCode::NoBinding
    );
}

#[test]
fn first_of_each_backend_defaults_to_instance_id_without_collision() {
    // The Mixed example widget: one d1-json and one r2-assets binding both default to
    // instanceId; backends are separate namespaces, so they do not collide.
    let m = manifest(json!([d1("content"), r2("assets", Some("assetBucketId"))]));
    let empty = config(json!({}));
    assert_eq!(
        resolve_bucket(&m, &m.bindings[0], None, &empty, "i").unwrap(),
        "i"
    );
    assert_eq!(
        resolve_bucket(&m, &m.bindings[1], None, &empty, "i").unwrap(),
        "i"
    );
}

#[test]
fn two_bindings_of_one_backend_never_collide() {
    let mut second = d1("drafts");
    second["configKey"] = json!("draftsBucket");
    let m = manifest(json!([
        d1("main"),
        second,
        d1("archive"),
        r2("a", None),
        r2("b", None)
    ]));
    let empty = config(json!({}));
    let resolve = |i: usize, c: &Map<String, Value>| {
        resolve_bucket(&m, &m.bindings[i], None, c, "inst").unwrap()
    };
    let defaults: Vec<String> = (0..5).map(|i| resolve(i, &empty)).collect();
    assert_eq!(
        defaults,
        ["inst", "inst:drafts", "inst:archive", "inst", "inst:b"]
    );
    for (i, d) in defaults.iter().enumerate() {
        assert!(is_default_bucket(&m, &m.bindings[i], "inst", d));
    }
    // storageNamespace only moves the first d1-json binding.
    let ns = config(json!({"storageNamespace": "team"}));
    assert_eq!(
        (0..5).map(|i| resolve(i, &ns)).collect::<Vec<_>>(),
        ["team", "inst:drafts", "inst:archive", "inst", "inst:b"]
    );
    // Later bindings move through their own config key (declared or synthesised).
    let c = config(
        json!({"draftsBucket": "d", "bucket:archive": "old", "bucket:b": "pics", "bucket:a": "x"}),
    );
    assert_eq!(
        (0..5).map(|i| resolve(i, &c)).collect::<Vec<_>>(),
        ["inst", "d", "old", "x", "pics"]
    );
    assert_eq!(config_key(&m, &m.bindings[1]).unwrap(), "draftsBucket");
    assert_eq!(config_key(&m, &m.bindings[2]).unwrap(), "bucket:archive");
    assert_eq!(config_key(&m, &m.bindings[3]).unwrap(), "bucket:a");
}

#[test]
fn first_d1_binding_with_config_key_also_honours_storage_namespace() {
    let mut b = d1("main");
    b["configKey"] = json!("noteBucket");
    let m = manifest(json!([b]));
    let b = &m.bindings[0];
    let both = config(json!({"noteBucket": "mine", "storageNamespace": "team"}));
    assert_eq!(resolve_bucket(&m, b, None, &both, "i").unwrap(), "mine");
    let ns = config(json!({"storageNamespace": "team"}));
    assert_eq!(resolve_bucket(&m, b, None, &ns, "i").unwrap(), "team");
}

#[test]
fn no_instance_can_take_another_instances_default() {
    // "x:assets" would equal instance "x"'s second binding default: instance ids have no ':'.
    assert!(validate_instance_id("x:assets").is_err());
    let m = manifest(json!([r2("first", None), r2("assets", None)]));
    assert_eq!(default_bucket(&m, &m.bindings[1], "x").unwrap(), "x:assets");
    assert_eq!(
        default_bucket(&m, &m.bindings[0], "x:assets")
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
}

#[test]
fn bad_names_and_config_values_are_errors() {
    let m = manifest(json!([d1("main")]));
    let b = &m.bindings[0];
    let empty = config(json!({}));
    for bad in [
        "",
        "a/b",
        "../x",
        ".x",
        "a b",
        "a'b",
        "é",
        "a\u{0}",
        &"a".repeat(201),
    ] {
        let e = resolve_bucket(&m, b, Some(bad), &empty, "i").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        let c = config(json!({ "storageNamespace": bad }));
        if !bad.is_empty() {
            assert_eq!(
                resolve_bucket(&m, b, None, &c, "i").unwrap_err().code,
                ErrorCode::InvalidArgument
            );
        }
        assert!(resolve_bucket(&m, b, None, &empty, bad).is_err());
    }
    for bad in [json!(5), json!(true), json!({}), json!(["a"])] {
        let c = config(json!({ "storageNamespace": bad }));
        assert_eq!(
            resolve_bucket(&m, b, None, &c, "i").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
    assert!(validate_bucket_id(&"a".repeat(200)).is_ok());
    assert!(validate_bucket_id("inst_1.v2:assets-x").is_ok());
}

#[test]
fn resolution_reports_its_source() {
    let mut main = d1("main");
    main["configKey"] = json!("noteBucket");
    let m = manifest(json!([main, d1("drafts")]));
    let (a, b) = (&m.bindings[0], &m.bindings[1]);
    let src = |bd: &Binding, e: Option<&str>, c: Value| {
        resolve_with_source(&m, bd, e, &config(c), "i").unwrap()
    };
    assert_eq!(
        src(a, Some("x"), json!({"noteBucket": "n"})).source,
        BucketSource::Explicit
    );
    assert_eq!(
        src(a, None, json!({"noteBucket": "n", "storageNamespace": "s"})),
        Resolution {
            bucket_id: "n".into(),
            source: BucketSource::Config("noteBucket".into())
        }
    );
    assert_eq!(
        src(a, None, json!({"storageNamespace": "s"})).source,
        BucketSource::Config("storageNamespace".into())
    );
    assert_eq!(src(a, None, json!({})).source, BucketSource::Default);
    assert_eq!(
        src(b, None, json!({"storageNamespace": "s"})),
        Resolution {
            bucket_id: "i:drafts".into(),
            source: BucketSource::Default
        }
    );
    assert_eq!(
        src(b, None, json!({"bucket:drafts": "d"})).source,
        BucketSource::Config("bucket:drafts".into())
    );
}

#[test]
fn binding_from_another_manifest_is_no_binding() {
    let m = manifest(json!([d1("main")]));
    let other = manifest(json!([d1("elsewhere")]));
    let e = resolve_bucket(&m, &other.bindings[0], None, &config(json!({})), "i").unwrap_err();
    assert_eq!(e.code, ErrorCode::NoBinding);
    assert!(!is_default_bucket(&m, &other.bindings[0], "i", "i"));
}

#[test]
fn compatibility_needs_backend_schema_id_and_version() {
    let base = Contract {
        backend: Backend::D1Json,
        schema_id: "notes.plaintext".into(),
        schema_version: 1,
    };
    assert!(compatible(&base, &base.clone()));
    assert!(check_compatible(&base, &base).is_ok());
    let variants = [
        Contract {
            backend: Backend::R2Assets,
            ..base.clone()
        },
        Contract {
            schema_id: "notes.rich".into(),
            ..base.clone()
        },
        Contract {
            schema_version: 2,
            ..base.clone()
        },
    ];
    for v in variants {
        assert!(!compatible(&base, &v));
        let e = check_compatible(&base, &v).unwrap_err();
        assert_eq!(e.code, ErrorCode::IncompatibleBucket);
        let d = e.detail.unwrap();
        assert_eq!(d["existing"]["schemaId"], "notes.plaintext");
        assert_eq!(d["wanted"], serde_json::to_value(&v).unwrap());
        // The one shape (docs/ERRORS.md): exactly these two contracts, camelCase.
        assert_eq!(d, json!({"existing": base, "wanted": v}));
        assert_eq!(
            incompatible(&base, &v),
            check_compatible(&base, &v).unwrap_err()
        );
    }
}

#[test]
fn backend_spellings() {
    for b in [Backend::D1Json, Backend::R2Assets] {
        assert_eq!(Backend::parse(b.as_str()), Some(b));
        assert_eq!(serde_json::to_value(b).unwrap(), json!(b.as_str()));
    }
    assert_eq!(Backend::parse("D1-JSON"), None);
}

#[test]
fn id_errors_name_the_id_and_its_grammar() {
    // Hosts show these messages as they are: pin them word for word.
    let e = validate_bucket_id("a/b").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(
        e.message,
        "invalid bucket id \"a/b\": use letters, digits, '_', '.', ':' or '-' (start with a letter or digit, at most 200)"
    );
    let e = validate_instance_id("x:y").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(
        e.message,
        "invalid instance id \"x:y\": use letters, digits, '_', '.' or '-' (start with a letter or digit, at most 128)"
    );
    // The length bounds, exactly: the longest valid id and one character more.
    assert!(is_valid_bucket_id(&"a".repeat(MAX_BUCKET_ID_LEN)));
    assert!(!is_valid_bucket_id(&"a".repeat(MAX_BUCKET_ID_LEN + 1)));
    assert!(is_valid_instance_id(&"a".repeat(MAX_INSTANCE_ID_LEN)));
    assert!(!is_valid_instance_id(&"a".repeat(MAX_INSTANCE_ID_LEN + 1)));
    assert!(validate_instance_id(&"a".repeat(MAX_INSTANCE_ID_LEN)).is_ok());
    assert!(validate_instance_id(&"a".repeat(MAX_INSTANCE_ID_LEN + 1)).is_err());
    // Every allowed character after the first, and none of them first.
    assert!(is_valid_bucket_id("a_.:-9Z"));
    assert!(is_valid_instance_id("a_.-9Z"));
    for first in ["_", ".", ":", "-"] {
        assert!(!is_valid_bucket_id(&format!("{first}a")), "{first}");
        assert!(!is_valid_instance_id(&format!("{first}a")), "{first}");
    }
    assert!(!is_valid_bucket_id("") && !is_valid_instance_id(""));
}
