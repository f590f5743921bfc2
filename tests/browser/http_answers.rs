//! What the backend client makes of answers it cannot read: a truncated body, text that is
//! not JSON, JSON of the wrong shape. Each is INTERNAL with the route's name, never a panic
//! and never a half-read value; a well-formed answer with fields this build does not know
//! still reads. The answers come from `data:` URLs (the client appends the route's path
//! after a `#`, which a `data:` URL ignores), so the body is exactly the text under test.

use monodit_bridge::http::{Api, DocumentFetch};
use monodit_core::ErrorCode;
use serde_json::json;
use wasm_bindgen_test::*;

/// A client whose every GET answers `body` with status 200.
fn answering(body: &str) -> Api {
    let enc = String::from(js_sys::encode_uri_component(body));
    Api::new(&format!("data:application/json,{enc}#"), "token")
}

const ME: &str = r#"{"userId":"u1","plan":"pro","addons":0,"usedBytes":1,"limitBytes":2}"#;
const DOC: &str = r#"{"bucketId":"b1","version":3,"size":2,"updatedAt":5,"value":{"a":[1,"x"]},"contract":{"backend":"d1-json","schemaId":"notes.plaintext","schemaVersion":1}}"#;

#[wasm_bindgen_test]
async fn well_formed_answers_read_with_unknown_fields_ignored() {
    let me = answering(&ME.replace('}', r#","future":{"x":[1]}}"#))
        .me()
        .await
        .unwrap();
    assert_eq!((me.user_id.as_str(), me.limit_bytes), ("u1", 2));
    match answering(DOC).document("b1", None).await.unwrap() {
        DocumentFetch::Fresh(d) => {
            assert_eq!((d.meta.version, d.value), (3, json!({"a": [1, "x"]})));
        }
        other => panic!("{other:?}"),
    }
}

#[wasm_bindgen_test]
async fn unreadable_answers_are_internal_errors() {
    let truncated_me = &ME[..ME.len() - 10];
    let truncated_doc = &DOC[..DOC.len() / 2];
    for body in [
        truncated_me,
        "",
        "<html>502 Bad Gateway</html>",
        "[]",
        "null",
        r#"{"userId":"u1","plan":"pro","addons":0,"usedBytes":1}"#,
        r#"{"userId":7,"plan":"pro","addons":0,"usedBytes":1,"limitBytes":2}"#,
        r#"{"userId":"u1","plan":"gold","addons":0,"usedBytes":1,"limitBytes":2}"#,
        r#"{"userId":"u1","plan":"pro","addons":-1,"usedBytes":1,"limitBytes":2}"#,
    ] {
        let err = answering(body).me().await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Internal, "{body}: {err:?}");
        assert!(err.message.starts_with("me:"), "{body}: {}", err.message);
    }
    for body in [
        truncated_doc,
        // The document's metadata is flattened into it: without a field it is unreadable.
        &DOC.replace(r#""updatedAt":5,"#, ""),
        &DOC.replace(r#""value":{"a":[1,"x"]},"#, ""),
        &DOC.replace(r#""schemaVersion":1"#, r#""schemaVersion":"1""#),
    ] {
        let err = answering(body).document("b1", None).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Internal, "{body}: {err:?}");
    }
    let err = answering(r#"{"bucketId":"a","version":1,"assets":[{"name":"x"}]}"#)
        .assets("a")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
    let err = answering(r#"{"entries":[{"key":"k"}],"hasMore":false}"#)
        .kv_list("p", "", "")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
}
