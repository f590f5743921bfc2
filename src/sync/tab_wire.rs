//! Reading a [`TabMessage`] from its JSON text by hand ([`crate::decode::read`]), without
//! serde's internally tagged enum support: `#[serde(tag = "t")]` buffers the whole message
//! into serde's private `Content` tree (the tag may come last), and the derived visitors
//! were most of the host's serde code (bench/README.md, "Bundle size"). The wire form is
//! unchanged (tabs.rs still derives `Serialize`), unknown fields are ignored, and a missing
//! or mistyped required field fails the message.

use super::events::EventKind;
use super::tabs::TabMessage;
use crate::decode::read::{self, one_of, FromJson, Obj, Res};
use serde_json::Value;

impl FromJson for EventKind {
    fn from_json(v: Value) -> Res<Self> {
        const KINDS: [EventKind; 4] = [
            EventKind::Optimistic,
            EventKind::Confirmed,
            EventKind::Revalidated,
            EventKind::Rollback,
        ];
        let names = KINDS.map(EventKind::as_str);
        Ok(KINDS[one_of(v, &names)?])
    }
}

fn message(v: Value) -> Res<TabMessage> {
    let mut o = Obj::new(v)?;
    let t: String = o.req("t")?;
    Ok(match t.as_str() {
        "doc" => TabMessage::Doc {
            bucket_id: o.req("bucketId")?,
            kind: o.req("kind")?,
            // Present-but-null is a value; only a missing field fails.
            value: o.take("value").ok_or("missing field `value`")?,
            confirmed_value: o
                .take("confirmedValue")
                .ok_or("missing field `confirmedValue`")?,
            confirmed_version: o.req("confirmedVersion")?,
            pending: o.req("pending")?,
            mutation_id: o.opt("mutationId")?,
            also_settled: o.or_default("alsoSettled")?,
            error: o.opt("error")?,
            settled: o.or_default("settled")?,
        },
        "queued" => TabMessage::Queued {
            bucket_ids: o.req("bucketIds")?,
        },
        "assets" => TabMessage::Assets {
            bucket_id: o.req("bucketId")?,
            version: o.req("version")?,
            assets: o.req("assets")?,
        },
        "deleted" => TabMessage::Deleted {
            bucket_id: o.req("bucketId")?,
        },
        _ => return Err(format!("unknown message `{t}`")),
    })
}

/// The message, or None when the text is not one (another version's message, a stray post).
pub(super) fn decode(text: &str) -> Option<TabMessage> {
    message(read::parse(text).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use monodit_core::outbox::Settled;
    use monodit_core::{Error, ErrorCode};
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
