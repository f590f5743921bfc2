//! Reading a [`TabMessage`] from its JSON text without serde's internally tagged enum support.
//!
//! `#[serde(tag = "t")]` deserializes by first buffering the whole message into serde's
//! private `Content` tree (the tag may come last), and that buffering was the only user of
//! `Content` in the host: ~28 KB of wasm (bench/README.md, "Bundle size"). Here every
//! variant's fields are read in one streaming pass into [`Wire`] and checked per tag. The
//! wire form is unchanged (tabs.rs still derives `Serialize`), unknown fields are ignored as
//! before, and a missing or mistyped required field still fails the message.

use super::events::EventKind;
use super::tabs::TabMessage;
use monodit_core::api::AssetInfo;
use monodit_core::outbox::Settled;
use monodit_core::Error;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The union of every variant's fields (the variants share `bucketId`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    t: String,
    bucket_id: Option<String>,
    // Doc
    kind: Option<EventKind>,
    // Present-but-null is a value (`Some(Null)`); only a missing field is None.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    confirmed_value: Option<Value>,
    confirmed_version: Option<u64>,
    pending: Option<bool>,
    #[serde(default)]
    mutation_id: Option<String>,
    #[serde(default)]
    also_settled: Vec<String>,
    #[serde(default)]
    error: Option<Error>,
    #[serde(default)]
    settled: Settled,
    // Queued
    bucket_ids: Option<Vec<String>>,
    // Assets
    version: Option<u64>,
    assets: Option<Vec<AssetInfo>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The message, or None when the text is not one (another version's message, a stray post).
pub(super) fn decode(text: &str) -> Option<TabMessage> {
    let w: Wire = serde_json::from_str(text).ok()?;
    Some(match w.t.as_str() {
        "doc" => TabMessage::Doc {
            bucket_id: w.bucket_id?,
            kind: w.kind?,
            value: w.value?,
            confirmed_value: w.confirmed_value?,
            confirmed_version: w.confirmed_version?,
            pending: w.pending?,
            mutation_id: w.mutation_id,
            also_settled: w.also_settled,
            error: w.error,
            settled: w.settled,
        },
        "queued" => TabMessage::Queued {
            bucket_ids: w.bucket_ids?,
        },
        "assets" => TabMessage::Assets {
            bucket_id: w.bucket_id?,
            version: w.version?,
            assets: w.assets?,
        },
        "deleted" => TabMessage::Deleted {
            bucket_id: w.bucket_id?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use monodit_core::ErrorCode;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    // The browser suite (`wasm-pack test --headless --chrome`) skips node-only tests.
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    fn round_trip(msg: TabMessage) {
        let text = serde_json::to_string(&msg).unwrap();
        let back = decode(&text).unwrap_or_else(|| panic!("not decoded: {text}"));
        assert_eq!(format!("{back:?}"), format!("{msg:?}"));
    }

    #[wasm_bindgen_test]
    fn every_variant_reads_back_what_tabs_write() {
        round_trip(TabMessage::Doc {
            bucket_id: "b1".into(),
            kind: EventKind::Rollback,
            value: Value::Null,
            confirmed_value: json!({"a": [1, 2.5, "x"]}),
            confirmed_version: 7,
            pending: true,
            mutation_id: Some("m1".into()),
            also_settled: vec!["m0".into()],
            error: Some(Error::new(ErrorCode::Conflict, "moved")),
            settled: Settled {
                seq: 3.0,
                version: 7,
            },
        });
        round_trip(TabMessage::Doc {
            bucket_id: "b1".into(),
            kind: EventKind::Optimistic,
            value: json!(1),
            confirmed_value: Value::Null,
            confirmed_version: 0,
            pending: false,
            mutation_id: None,
            also_settled: vec![],
            error: None,
            settled: Settled::default(),
        });
        round_trip(TabMessage::Queued {
            bucket_ids: vec!["b1".into(), "b2".into()],
        });
        round_trip(TabMessage::Assets {
            bucket_id: "a1".into(),
            version: 4,
            assets: vec![],
        });
        round_trip(TabMessage::Deleted {
            bucket_id: "b1".into(),
        });
    }

    #[wasm_bindgen_test]
    fn the_tag_may_come_last_and_unknown_fields_are_ignored() {
        let text = r#"{"bucketId":"b","future":{"x":1},"t":"deleted"}"#;
        assert!(
            matches!(decode(text), Some(TabMessage::Deleted { bucket_id }) if bucket_id == "b")
        );
    }

    #[wasm_bindgen_test]
    fn what_is_not_a_message_is_none() {
        for text in [
            "",
            "[]",
            r#"{"t":"nope","bucketId":"b"}"#,
            r#"{"bucketId":"b"}"#,
            // A required field missing, null or mistyped.
            r#"{"t":"deleted"}"#,
            r#"{"t":"deleted","bucketId":null}"#,
            r#"{"t":"queued","bucketIds":"b"}"#,
            r#"{"t":"doc","bucketId":"b","kind":"optimistic","confirmedValue":1,"confirmedVersion":1,"pending":false}"#,
            r#"{"t":"doc","bucketId":"b","kind":"later","value":1,"confirmedValue":1,"confirmedVersion":1,"pending":false}"#,
        ] {
            assert!(decode(text).is_none(), "{text}");
        }
    }
}
