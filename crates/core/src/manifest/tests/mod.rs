//! Manifest validation: every rule of the module doc, each problem by JSON path.

use super::*;
use serde_json::json;

mod limits;
mod messages;

/// The paths of every problem, in report order.
fn paths(v: Value) -> Vec<String> {
    let err = Manifest::parse(&v).expect_err("manifest should be invalid");
    assert_eq!(err.code, ErrorCode::InvalidManifest);
    let detail = err.detail.expect("detail lists problems");
    detail
        .as_array()
        .expect("detail is an array")
        .iter()
        .map(|p| {
            assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()));
            p["path"].as_str().expect("path").to_string()
        })
        .collect()
}

fn dynamic(bindings: Value) -> Value {
    json!({"id": "w", "widgetType": "dynamic", "storage": {"bindings": bindings}})
}

fn notes() -> Value {
    json!({"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true})
}

#[test]
fn seed_000_document_example() {
    let mut v = json!({
        "widgetType": "dynamic",
        "storage": {"bindings": [{"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true}]}
    });
    // Verbatim, as a widget author would copy it: no id is needed without collections.
    assert_eq!(Manifest::parse(&v).unwrap().id, None);
    v["id"] = json!("notes");
    let m = Manifest::parse(&v).unwrap();
    assert_eq!(m.id.as_deref(), Some("notes"));
    assert_eq!(m.widget_type, WidgetType::Dynamic);
    assert_eq!(
        m.bindings,
        [Binding {
            key: "primary".into(),
            backend: Backend::D1Json,
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
            config_key: None,
            label: None,
            shareable: true,
        }]
    );
    assert!(m.collections.is_empty());
    let c = m.contract(&m.bindings[0]);
    assert_eq!(
        (c.backend, c.schema_id.as_str(), c.schema_version),
        (Backend::D1Json, "notes.plaintext", 1)
    );
}

#[test]
fn seed_000_asset_example() {
    let m = Manifest::parse(&json!({
        "id": "gallery",
        "widgetType": "dynamic",
        "storage": {"bindings": [{"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "assetBucketId", "shareable": true}]}
    }))
    .unwrap();
    let b = m.binding_for(Backend::R2Assets).unwrap();
    assert_eq!(b.config_key.as_deref(), Some("assetBucketId"));
    assert!(m.binding_for(Backend::D1Json).is_none());
    assert_eq!(
        m.select_binding(Backend::D1Json, None).unwrap_err().code,
        ErrorCode::NoBinding
    );
    assert_eq!(
        m.select_binding(Backend::R2Assets, Some("assets"))
            .unwrap()
            .key,
        "assets"
    );
    assert_eq!(
        m.select_binding(Backend::D1Json, Some("assets"))
            .unwrap_err()
            .code,
        ErrorCode::NoBinding
    );
    assert_eq!(
        m.select_binding(Backend::R2Assets, Some("nope"))
            .unwrap_err()
            .code,
        ErrorCode::NoBinding
    );
}

#[test]
fn seed_000_mixed_example_needs_dynamic() {
    let mut v = json!({
        "id": "gallery",
        "storage": {"bindings": [
            {"key": "content", "backend": "d1-json", "schemaId": "gallery.settings", "schemaVersion": 1},
            {"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "assetBucketId"}
        ]}
    });
    // Written without widgetType, as a mixed widget's bindings often are, the manifest is
    // basic, and the rule "a basic widget cannot declare bucket storage" applies.
    assert_eq!(paths(v.clone()), ["$.storage.bindings"]);
    v["widgetType"] = json!("basic");
    assert_eq!(paths(v.clone()), ["$.storage.bindings"]);
    v["widgetType"] = json!("dynamic");
    let m = Manifest::parse(&v).unwrap();
    assert_eq!(m.bindings.len(), 2);
    assert!(!m.bindings[0].shareable);
    assert_eq!(m.binding("content").unwrap().backend, Backend::D1Json);
    assert_eq!(m.binding("assets").unwrap().backend, Backend::R2Assets);
}

#[test]
fn seed_003_manifest() {
    let m = Manifest::parse(&json!({
        "slug": "forms",
        "name": "Forms", "version": "1.0.0",
        "storage": {
            "submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]},
            "forms": {"indexes": ["slug"]}
        }
    }))
    .unwrap();
    assert_eq!(m.id.as_deref(), Some("forms"));
    // Collections scope data by plugin id: without one the manifest says so.
    assert_eq!(
        paths(json!({"storage": {"submissions": {"indexes": ["formId"]}}})),
        ["$.id"]
    );
    assert_eq!(
        m.widget_type,
        WidgetType::Basic,
        "collections are fine on basic widgets"
    );
    let s = m.collection("submissions").unwrap();
    assert_eq!(s.indexes.len(), 5);
    assert_eq!(
        s.indexes[3],
        Index::Composite(vec!["formId".into(), "createdAt".into()])
    );
    assert_eq!(s.indexes[3].fields(), ["formId", "createdAt"]);
    assert_eq!(
        m.collection("forms").unwrap().indexes,
        [Index::Single("slug".into())]
    );
    let e = m.collection("comments").unwrap_err();
    assert_eq!(e.code, ErrorCode::UndeclaredCollection);
    assert_eq!(e.detail.unwrap()["collection"], "comments");
    assert_eq!(
        m.collection("__proto__").unwrap_err().code,
        ErrorCode::UndeclaredCollection
    );
    // A collection with no indexes is a valid declaration.
    let m = Manifest::parse(&json!({"id": "x", "storage": {"log": {}}})).unwrap();
    assert!(m.collection("log").unwrap().indexes.is_empty());
}

#[test]
fn every_binding_field_is_checked() {
    // All required fields missing: four problems, one per field.
    assert_eq!(
        paths(dynamic(json!([{}]))),
        [
            "$.storage.bindings[0].key",
            "$.storage.bindings[0].backend",
            "$.storage.bindings[0].schemaId",
            "$.storage.bindings[0].schemaVersion"
        ]
    );
    // Every field with the wrong type or value, all reported at once.
    let got = paths(dynamic(json!([{
        "key": 7, "backend": "s3", "schemaId": "", "schemaVersion": "1",
        "configKey": "a-b", "label": "", "shareable": "yes"
    }])));
    let want: Vec<String> = [
        "key",
        "backend",
        "schemaId",
        "schemaVersion",
        "configKey",
        "label",
        "shareable",
    ]
    .iter()
    .map(|f| format!("$.storage.bindings[0].{f}"))
    .collect();
    assert_eq!(got, want);
    // Optional fields present and valid.
    let m = Manifest::parse(&dynamic(json!([{
        "key": "main-doc_2", "backend": "d1-json", "schemaId": "A.b-c_d", "schemaVersion": 4294967295u64,
        "configKey": "_noteBucket", "label": "Notes — équipe", "shareable": false
    }])))
    .unwrap();
    let b = &m.bindings[0];
    assert_eq!(b.schema_version, u32::MAX);
    assert_eq!(b.config_key.as_deref(), Some("_noteBucket"));
    assert_eq!(b.label.as_deref(), Some("Notes — équipe"));
}

#[test]
fn schema_version_is_an_integer_at_least_one() {
    for bad in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1.0),
        json!("1"),
        json!(null),
        json!(4294967296u64),
        json!(u64::MAX),
        json!(1e300),
        json!(true),
    ] {
        let mut b = notes();
        b["schemaVersion"] = bad.clone();
        assert_eq!(
            paths(dynamic(json!([b]))),
            ["$.storage.bindings[0].schemaVersion"],
            "{bad}"
        );
    }
    // 1e400 cannot even be parsed as JSON, so a manifest carrying it fails before us.
    assert!(serde_json::from_str::<Value>(r#"{"schemaVersion": 1e400}"#).is_err());
}

#[test]
fn binding_keys_and_config_keys_are_unique() {
    let a = notes();
    let mut b = notes();
    b["schemaId"] = json!("other");
    assert_eq!(paths(dynamic(json!([a, b]))), ["$.storage.bindings[1].key"]);

    let assets = |key: &str, ck: &str| json!({"key": key, "backend": "r2-assets", "schemaId": "g", "schemaVersion": 1, "configKey": ck});
    assert_eq!(
        paths(dynamic(json!([
            assets("a", "bucket"),
            assets("b", "bucket")
        ]))),
        ["$.storage.bindings[1].configKey"]
    );
    // storageNamespace belongs to the first d1-json binding.
    assert_eq!(
        paths(dynamic(json!([notes(), assets("b", "storageNamespace")]))),
        ["$.storage.bindings[1].configKey"]
    );
    let mut first = notes();
    first["configKey"] = json!("storageNamespace");
    assert!(Manifest::parse(&dynamic(json!([first]))).is_ok());
}

#[test]
fn unknown_fields_inside_the_contract_are_rejected_outside_ignored() {
    let mut b = notes();
    b["schemaVersoin"] = json!(2);
    b["__proto__"] = json!({});
    assert_eq!(
        paths(dynamic(json!([b]))),
        [
            "$.storage.bindings[0].__proto__",
            "$.storage.bindings[0].schemaVersoin"
        ]
    );
    assert_eq!(
        paths(json!({"id": "x", "storage": {"c": {"indexes": [], "unique": ["a"]}}})),
        ["$.storage.c.unique"]
    );
    let m = Manifest::parse(
        &json!({"id": "x", "name": "X", "entry": "index.html", "permissions": ["a"]}),
    )
    .unwrap();
    assert_eq!(m.widget_type, WidgetType::Basic);
}

#[test]
fn every_problem_is_reported_at_once() {
    let got = paths(json!({
        "id": "Bad Id",
        "widgetType": "fancy",
        "storage": {
            "bindings": [notes(), {"key": "primary", "backend": "d1-json", "schemaId": "x", "schemaVersion": 0}, 5],
            "__proto__": {"indexes": ["a"]},
            "ok": {"indexes": ["a'b", ["x"], ["x", "x"], "a", "a", 3]},
            "weird name": []
        }
    }));
    assert_eq!(
        got,
        [
            "$.id",
            "$.widgetType",
            "$.storage.__proto__",
            "$.storage.bindings",
            "$.storage.bindings[1].schemaVersion",
            "$.storage.bindings[2]",
            "$.storage.ok.indexes[0]",
            "$.storage.ok.indexes[1]",
            "$.storage.ok.indexes[2][1]",
            "$.storage.ok.indexes[4]",
            "$.storage.ok.indexes[5]",
            "$.storage[\"weird name\"]",
            "$.storage[\"weird name\"]",
        ]
    );
    let err = Manifest::parse(&json!({"id": 1, "widgetType": 2, "storage": 3})).unwrap_err();
    assert!(err.message.contains("3 problems"), "{}", err.message);
}

#[test]
fn manifest_shapes() {
    assert_eq!(paths(json!([])), ["$"]);
    assert_eq!(paths(json!(null)), ["$"]);
    assert_eq!(paths(json!({"id": "x", "storage": []})), ["$.storage"]);
    assert_eq!(
        paths(json!({"id": "x", "storage": {"bindings": {}}})),
        ["$.storage.bindings"]
    );
    assert_eq!(
        paths(json!({"id": "x", "storage": {"c": {"indexes": "a"}}})),
        ["$.storage.c.indexes"]
    );
    assert_eq!(
        paths(json!({"id": "x", "storage": {"c": ["a"]}})),
        ["$.storage.c"]
    );
    // Empty bindings are fine on a basic widget (nothing is declared).
    assert!(Manifest::parse(&json!({"id": "x", "storage": {"bindings": []}})).is_ok());
}

#[test]
fn widget_id_grammar_and_slug_alias() {
    for ok in ["forms", "a", "0", "my-widget.v2_beta", &"a".repeat(64)] {
        assert!(Manifest::parse(&json!({"id": ok})).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "Forms",
        "-a",
        ".a",
        "a b",
        "a/b",
        "a'b",
        "ünï",
        &"a".repeat(65),
        "a\u{0}",
    ] {
        assert_eq!(paths(json!({"id": bad})), ["$.id"], "{bad:?}");
    }
    assert_eq!(paths(json!({"slug": "Forms"})), ["$.slug"]);
    assert_eq!(paths(json!({"id": 5})), ["$.id"]);
    assert_eq!(
        Manifest::parse(&json!({"id": "a", "slug": "a"}))
            .unwrap()
            .id
            .as_deref(),
        Some("a")
    );
    assert_eq!(paths(json!({"id": "a", "slug": "b"})), ["$.slug"]);
}

#[test]
fn widget_type_values() {
    assert_eq!(
        Manifest::parse(&json!({"id": "x", "widgetType": "basic"}))
            .unwrap()
            .widget_type,
        WidgetType::Basic
    );
    assert_eq!(
        Manifest::parse(&json!({"id": "x", "widgetType": "dynamic"}))
            .unwrap()
            .widget_type,
        WidgetType::Dynamic
    );
    for bad in [json!("Dynamic"), json!(""), json!(null), json!(true)] {
        assert_eq!(
            paths(json!({"id": "x", "widgetType": bad})),
            ["$.widgetType"]
        );
    }
}

#[test]
fn hostile_collection_names() {
    for bad in [
        "__proto__",
        "__x",
        "constructor",
        "prototype",
        "then",
        "a-b",
        "a'b",
        "a\"b",
        "$x",
        "a.b",
        "",
        "9a",
        "été",
        "a b",
        "a;DROP",
        &"a".repeat(65),
    ] {
        let v = json!({"id": "x", "storage": {bad: {"indexes": []}}});
        assert_eq!(paths(v), [path_key("$.storage", bad)], "{bad:?}");
    }
    for ok in ["submissions", "_private", "A1", &"a".repeat(64)] {
        assert!(
            Manifest::parse(&json!({"id": "x", "storage": {ok: {}}})).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn hostile_field_names() {
    for bad in [
        "a'b",
        "a\"b",
        "$",
        "$.x",
        "a[0]",
        "__proto__",
        "a.__proto__",
        "constructor",
        "x.prototype",
        "a..b",
        ".a",
        "a.",
        "a.b.c.d.e",
        "",
        " a",
        "formId ",
        "日本",
        "a-b",
        "a\\b",
        "a\u{0}",
        &"a".repeat(65),
    ] {
        let v = json!({"id": "x", "storage": {"c": {"indexes": [bad]}}});
        assert_eq!(paths(v), ["$.storage.c.indexes[0]"], "{bad:?}");
        let v = json!({"id": "x", "storage": {"c": {"indexes": [["ok", bad]]}}});
        assert_eq!(paths(v), ["$.storage.c.indexes[0][1]"], "{bad:?}");
    }
    for ok in ["a", "_a", "author.name", "a.b.c.d", "A_1", &"a".repeat(64)] {
        assert!(
            Manifest::parse(&json!({"id": "x", "storage": {"c": {"indexes": [ok]}}})).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn composite_index_rules() {
    let idx = |i: Value| json!({"id": "x", "storage": {"c": {"indexes": [i]}}});
    assert_eq!(paths(idx(json!([]))), ["$.storage.c.indexes[0]"]);
    assert_eq!(paths(idx(json!(["a"]))), ["$.storage.c.indexes[0]"]);
    assert_eq!(
        paths(idx(json!(["a", "b", "c", "d", "e"]))),
        ["$.storage.c.indexes[0]"]
    );
    assert_eq!(paths(idx(json!(["a", "a"]))), ["$.storage.c.indexes[0][1]"]);
    assert_eq!(paths(idx(json!(["a", 1]))), ["$.storage.c.indexes[0][1]"]);
    assert_eq!(
        paths(idx(json!(["a", ["b"]]))),
        ["$.storage.c.indexes[0][1]"]
    );
    assert_eq!(paths(idx(json!({"a": 1}))), ["$.storage.c.indexes[0]"]);
    assert!(Manifest::parse(&idx(json!(["a", "b", "c", "d"]))).is_ok());
    // Duplicates are rejected; ["a","b"] and ["b","a"] are different indexes.
    let v = json!({"id": "x", "storage": {"c": {"indexes": [["a", "b"], ["b", "a"], ["a", "b"], "a", "a"]}}});
    assert_eq!(
        paths(v),
        ["$.storage.c.indexes[2]", "$.storage.c.indexes[4]"]
    );
}

#[test]
fn stand_alone_collection_declarations() {
    let d = CollectionDecl::from_json(&json!(["formId", ["formId", "createdAt"]])).unwrap();
    assert_eq!(d.indexes.len(), 2);
    let d2 = CollectionDecl::from_json(&json!({"indexes": ["formId", ["formId", "createdAt"]]}))
        .unwrap();
    assert_eq!(d, d2);
    // Serialised indexes read back as the same declaration.
    let again = CollectionDecl::from_json(&serde_json::to_value(&d.indexes).unwrap()).unwrap();
    assert_eq!(again, d);
    let e = CollectionDecl::from_json(&json!(["a'b", "ok", "ok"])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidManifest);
    assert_eq!(e.detail.unwrap().as_array().unwrap().len(), 2);
    assert!(CollectionDecl::from_json(&json!("formId")).is_err());
}

#[test]
fn labels() {
    for bad in [
        json!(""),
        json!("   "),
        json!("a\nb"),
        json!("x".repeat(201)),
        json!(3),
    ] {
        let mut b = notes();
        b["label"] = bad;
        assert_eq!(paths(dynamic(json!([b]))), ["$.storage.bindings[0].label"]);
    }
}

#[test]
fn binding_key_grammar() {
    for bad in [
        "",
        "1a",
        "_a",
        "a:b",
        "a.b",
        "a b",
        "__proto__",
        &"a".repeat(33),
    ] {
        let mut b = notes();
        b["key"] = json!(bad);
        assert_eq!(
            paths(dynamic(json!([b]))),
            ["$.storage.bindings[0].key"],
            "{bad:?}"
        );
    }
}

#[test]
fn path_rendering_escapes_hostile_keys() {
    assert_eq!(path_key("$", "a"), "$.a");
    assert_eq!(path_key("$", "a'b"), "$[\"a'b\"]");
    assert_eq!(path_key("$", "a\"]"), "$[\"a\\\"]\"]");
    assert_eq!(path_key("$", ""), "$[\"\"]");
    assert_eq!(path_key("$", "1"), "$[\"1\"]");
}

#[test]
fn long_hostile_input_is_truncated_in_messages() {
    let err = Manifest::parse(&json!({"id": "x".repeat(10_000)})).unwrap_err();
    assert!(err.message.len() < 400, "{}", err.message.len());
}

#[test]
fn storage_namespace_is_the_first_d1_json_bindings_wherever_it_stands() {
    let binding = |key: &str, backend: &str, ck: Option<&str>| {
        let mut b = json!({"key": key, "backend": backend, "schemaId": "s", "schemaVersion": 1});
        if let Some(ck) = ck {
            b["configKey"] = json!(ck);
        }
        b
    };
    let ns = Some("storageNamespace");
    // After an r2-assets binding, the first d1-json binding may still take it.
    let m = Manifest::parse(&dynamic(json!([
        binding("photos", "r2-assets", None),
        binding("notes", "d1-json", ns)
    ])));
    assert!(m.is_ok(), "{m:?}");
    // Neither an r2-assets binding (even the first binding of all) nor a second d1-json one.
    assert_eq!(
        paths(dynamic(json!([binding("photos", "r2-assets", ns)]))),
        ["$.storage.bindings[0].configKey"]
    );
    assert_eq!(
        paths(dynamic(json!([
            binding("a", "d1-json", None),
            binding("b", "d1-json", ns)
        ]))),
        ["$.storage.bindings[1].configKey"]
    );
}
