//! The hand-written readers ([`super::read`], [`super::wire`]) against serde: every type the
//! host reads comes back equal from what its serde `Serialize` writes (the server and older
//! builds of this crate write with serde), and bad input fails whole, never panicking.

use super::read::{read, FromJson};
use monodit_core::api::{
    AssetBucketMeta, AssetInfo, AssetList, BatchMetaResponse, BucketInfo, BucketUsage,
    ConnectedInstance, Contract, DeletedBucket, DevFaults, Document, DocumentMeta, InstanceInfo,
    InstanceKind, Me, NewUser, Plan, SetFaults, UploadPart, UploadSession, Usage,
};
use monodit_core::buckets::Backend;
use monodit_core::kv::{KvEntry, KvList};
use monodit_core::outbox::{Condition, Settled};
use monodit_core::{Error, ErrorCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Debug;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// What serde writes for `x` reads back as `x`, from a value and from text.
fn same<T: serde::Serialize + FromJson + PartialEq + Debug>(x: T) {
    let v = serde_json::to_value(&x).unwrap();
    assert_eq!(T::from_json(v.clone()).as_ref(), Ok(&x), "{v}");
    assert_eq!(read::<T>(&v.to_string()).as_ref(), Ok(&x), "{v}");
}

fn contract() -> Contract {
    Contract {
        backend: Backend::D1Json,
        schema_id: "notes.plaintext".into(),
        schema_version: 3,
    }
}

fn asset(expires: Option<i64>) -> AssetInfo {
    AssetInfo {
        object_key: "k1".into(),
        name: "a.png".into(),
        size: 10,
        content_type: "image/png".into(),
        uploaded_at: -5,
        url: "https://x/y".into(),
        url_expires_at: expires,
    }
}

fn meta() -> DocumentMeta {
    DocumentMeta {
        bucket_id: "b1".into(),
        version: 9,
        size: 12,
        updated_at: 1_700_000_000_000,
    }
}

#[wasm_bindgen_test]
fn every_wire_type_reads_back_what_serde_writes() {
    same(Error::new(ErrorCode::Conflict, "moved").with_detail(json!({"currentVersion": 7})));
    same(Error::new(ErrorCode::Internal, "x"));
    same(Me {
        user_id: "u".into(),
        plan: Plan::Pro,
        addons: 2,
        used_bytes: 3,
        limit_bytes: u64::MAX,
    });
    same(NewUser {
        user_id: "u".into(),
        token: "t".into(),
    });
    same(SetFaults {
        document_put_errors: 4,
    });
    same(DevFaults {
        document_put_errors: 1,
        upload_response_lost: 2,
        document_response_lost: 3,
    });
    same(Usage {
        plan: Plan::Free,
        used_bytes: 1,
        limit_bytes: 2,
        collection_bytes: 3,
        kv_bytes: 4,
        buckets: vec![BucketUsage {
            backend: Backend::R2Assets,
            bucket_id: "a".into(),
            bytes: 5,
        }],
    });
    same(vec![BucketInfo {
        contract: contract(),
        bucket_id: "b".into(),
        bytes: 1,
        version: 2,
        created_at: 3,
        instances: vec![ConnectedInstance {
            instance_id: "i".into(),
            binding_key: "notes".into(),
            isolated: true,
        }],
    }]);
    same(DeletedBucket {
        refunded_bytes: 1,
        deleted_objects: 2,
        disconnected_instances: vec!["i".into()],
    });
    let mut config = serde_json::Map::new();
    config.insert("x".into(), json!([1, {"y": null}]));
    same(InstanceInfo {
        instance_id: "i".into(),
        kind: InstanceKind::Theme,
        widget_id: "w".into(),
        manifest: json!({"name": "n"}),
        config,
        buckets: BTreeMap::from([("notes".to_string(), "b".to_string())]),
        source: Some("https://w".into()),
    });
    same(Document {
        meta: meta(),
        value: json!({"text": "hi", "n": 1.5}),
        contract: contract(),
    });
    same(Document {
        meta: meta(),
        value: Value::Null,
        contract: contract(),
    });
    same(BatchMetaResponse {
        documents: BTreeMap::from([("b1".to_string(), Some(meta())), ("b2".to_string(), None)]),
        assets: BTreeMap::from([
            (
                "a1".to_string(),
                Some(AssetBucketMeta {
                    bucket_id: "a1".into(),
                    version: 1,
                    count: 2,
                    bytes: 3,
                }),
            ),
            ("a2".to_string(), None),
        ]),
    });
    same(AssetList {
        bucket_id: "a".into(),
        version: 2,
        assets: vec![asset(Some(99)), asset(None)],
    });
    same(KvList {
        entries: vec![KvEntry {
            key: "k".into(),
            value: json!(false),
        }],
        has_more: true,
    });
    same(UploadSession {
        upload_id: "up".into(),
        bucket_id: "a".into(),
        size: 100,
        part_size: 50,
        parts: vec![UploadPart {
            part_number: 1,
            size: 50,
        }],
        expires_at: 5,
        completed: Some(asset(None)),
    });
    same(Settled {
        seq: 2.5,
        version: 3,
    });
    same(Condition::IfVersion);
    same(Condition::Plain);
}

#[wasm_bindgen_test]
fn the_mirror_records_read_back_what_serde_writes() {
    use crate::mirror::{AssetRecord, DocRecord, OutboxRecord, UploadRecord};
    same(DocRecord {
        bucket_id: "b".into(),
        contract: Some(contract()),
        confirmed_value: json!({"a": 1}),
        confirmed_version: 4,
        value: json!({"a": 2}),
        pending: true,
        confirmed_known: false,
        settled: Settled {
            seq: 1.0,
            version: 4,
        },
    });
    same(OutboxRecord {
        mutation_id: "m".into(),
        bucket_id: "b".into(),
        seq: 3.0,
        value: json!(null),
        contract: contract(),
        created_at: 5.0,
        base_version: Some(2),
        condition: Condition::IfVersion,
        after: Some(2.0),
        sent_as: Some("m0".into()),
    });
    same(AssetRecord {
        bucket_id: "a".into(),
        version: 1,
        assets: vec![asset(Some(1))],
    });
    same(UploadRecord {
        fingerprint: "f".into(),
        idempotency_key: "k".into(),
        upload_id: None,
        bucket_id: "a".into(),
        name: "n".into(),
        size: 1.0,
        last_modified: 2.0,
        content_type: String::new(),
        created_at: 3.0,
    });
}

#[wasm_bindgen_test]
fn missing_defaulted_fields_and_unknown_fields_read_as_serde_would() {
    use crate::mirror::{DocRecord, OutboxRecord};
    // Records of older builds lack the newer fields.
    let doc: DocRecord = read(
        r#"{"bucketId":"b","confirmedValue":null,"confirmedVersion":0,"value":1,"pending":false,"later":[1]}"#,
    )
    .unwrap();
    assert_eq!(doc.contract, None);
    assert!(
        doc.confirmed_known,
        "older records were read from the server first"
    );
    assert_eq!(doc.settled, Settled::default());
    let w: OutboxRecord = read(
        r#"{"mutationId":"m","bucketId":"b","seq":1,"value":{},"contract":{"backend":"d1-json","schemaId":"s","schemaVersion":1},"createdAt":2}"#,
    )
    .unwrap();
    assert_eq!(
        (w.base_version, w.condition, w.after, w.sent_as),
        (None, Condition::Plain, None, None)
    );
    let u: Usage =
        read(r#"{"plan":"pro","usedBytes":1,"limitBytes":2,"collectionBytes":3,"buckets":[]}"#)
            .unwrap();
    assert_eq!(u.kv_bytes, 0);
    let e: Error = read(r#"{"code":"NOT_FOUND","message":"m","detail":null,"extra":1}"#).unwrap();
    assert_eq!((e.code, e.detail), (ErrorCode::NotFound, None));
}

#[wasm_bindgen_test]
fn bad_input_fails_whole_and_names_the_field() {
    let me = r#""userId":"u","plan":"pro","addons":1,"usedBytes":2,"limitBytes":3"#;
    assert!(read::<Me>(&format!("{{{me}}}")).is_ok());
    for (text, field) in [
        // Truncated, not JSON, or not an object.
        (format!("{{{me}"), ""),
        (
            r#"{"userId":"u","plan":"pro","addons":1,"usedBytes":2,"limitBytes":"#.into(),
            "",
        ),
        ("".into(), ""),
        ("<html>".into(), ""),
        ("[]".into(), ""),
        ("null".into(), ""),
        // A required field missing, null or mistyped.
        (
            r#"{"plan":"pro","addons":1,"usedBytes":2,"limitBytes":3}"#.into(),
            "userId",
        ),
        (format!("{{{me},\"userId\":null}}"), "userId"),
        (format!("{{{me},\"plan\":\"gold\"}}"), "plan"),
        (format!("{{{me},\"addons\":4294967296}}"), "addons"),
        (format!("{{{me},\"usedBytes\":-1}}"), "usedBytes"),
        (format!("{{{me},\"usedBytes\":1.5}}"), "usedBytes"),
        (format!("{{{me},\"limitBytes\":\"3\"}}"), "limitBytes"),
    ] {
        let err = read::<Me>(&text).unwrap_err();
        assert!(err.contains(field), "{text}: {err}");
    }
    // Nested: the path names the element.
    let err = read::<AssetList>(r#"{"bucketId":"a","version":1,"assets":[{"objectKey":1}]}"#)
        .unwrap_err();
    assert!(err.contains("assets") && err.contains("[0]"), "{err}");
    // A flattened document needs its metadata as much as its value.
    let err = read::<Document>(
        r#"{"bucketId":"b","version":1,"size":1,"value":1,"contract":{"backend":"d1-json","schemaId":"s","schemaVersion":1}}"#,
    )
    .unwrap_err();
    assert!(err.contains("updatedAt"), "{err}");
    let err = read::<Document>(
        r#"{"bucketId":"b","version":1,"size":1,"updatedAt":1,"contract":{"backend":"d1-json","schemaId":"s","schemaVersion":1}}"#,
    )
    .unwrap_err();
    assert!(err.contains("value"), "{err}");
    assert!(read::<Error>(r#"{"code":"NOPE","message":"m"}"#).is_err());
    assert!(read::<Contract>(r#"{"backend":"s3","schemaId":"s","schemaVersion":1}"#).is_err());
}

#[wasm_bindgen_test]
fn json_text_reads_as_deep_as_serde_json_did_and_no_deeper() {
    let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
    // Deeper than a port message may be (protocol::MAX_DEPTH): the backend accepts it.
    assert!(super::read::parse(&nested(100)).is_ok());
    assert!(super::read::parse(&nested(200)).is_err());
    // Integers beyond 2^53 arrive as JS numbers: still unsigned integers, rounded.
    assert_eq!(read::<u64>("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(read::<u64>("9007199254740993"), Ok(9_007_199_254_740_992));
    assert!(read::<u64>("1e400").is_err(), "Infinity is not JSON");
}

#[wasm_bindgen_test]
fn a_stored_record_holding_what_json_cannot_is_none() {
    use crate::mirror::AssetRecord;
    use js_sys::Reflect;
    let record = || js_sys::JSON::parse(r#"{"bucketId":"a","version":1,"assets":[]}"#).unwrap();
    assert!(super::from_js_value::<AssetRecord>(&record()).is_some());
    let blob = web_sys::Blob::new().unwrap();
    for (field, bad) in [
        ("version", js_sys::Date::new_0().into()),
        ("assets", blob.into()),
        ("bucketId", wasm_bindgen::JsValue::UNDEFINED),
        ("version", wasm_bindgen::JsValue::from_f64(f64::NAN)),
    ] {
        let r = record();
        Reflect::set(&r, &field.into(), &bad).unwrap();
        assert!(super::from_js_value::<AssetRecord>(&r).is_none(), "{field}");
    }
}
