//! Decisions without I/O: the adapter reads the facts inside its transaction, asks a rule
//! what to do, and executes the answer ("rules produce decisions, adapters execute them");
//! the SQL that gathers facts and applies decisions stays in the adapter.

use crate::{quota, validate};
use monodit_core::api::{Contract, DocumentMeta, PutDocument, MAX_DOCUMENT_BYTES};
use monodit_core::buckets::{check_compatible, Backend};
use monodit_core::{Error, ErrorCode};

/// What the database holds for one document write, read in the write's transaction.
#[derive(Debug, Clone, Default)]
pub struct DocumentFacts {
    /// What an earlier write with the same mutation id produced, if any.
    pub replay: Option<DocumentMeta>,
    /// The bucket's contract, when the bucket exists.
    pub bucket: Option<Contract>,
    /// The bucket's version, or the last version before its deletion when it does not exist.
    pub version_floor: u64,
    /// The current document's (version, size), when there is one.
    pub current: Option<(u64, u64)>,
    /// The user's settled bytes.
    pub used: u64,
    /// Bytes reserved by uploads in flight.
    pub reserved: u64,
    /// The user's plan limit.
    pub limit: u64,
}

/// A write to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentWrite {
    /// The JSON text to store (what quota counts).
    pub text: String,
    /// The new version.
    pub version: u64,
    /// Bytes of `text`.
    pub size: u64,
    /// Change of the user's usage (negative: a refund).
    pub delta: i64,
    /// The bucket's contract (created with it when missing).
    pub contract: Contract,
}

/// The outcome of [`decide_document_put`].
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentDecision {
    /// A retry of a write already applied: answer with what it produced, change nothing.
    Replay(DocumentMeta),
    /// Apply this write.
    Write(DocumentWrite),
}

/// Seed 000 document write rules, in order: input grammar; a known mutation id replays (so a
/// retry after a lost acknowledgement never applies twice, even if the document moved on);
/// size (1 MB); contract (INCOMPATIBLE_BUCKET); expected version (`If-Match` or
/// `expectedVersion`, 0 = must not exist; CONFLICT carries the current version); quota on
/// growth only, refunding the previous bytes exactly. Versions continue past deletions.
pub fn decide_document_put(
    bucket_id: &str,
    req: &PutDocument,
    if_match: Option<u64>,
    facts: &DocumentFacts,
) -> Result<DocumentDecision, Error> {
    validate::bucket_id(bucket_id)?;
    validate::schema_id(&req.schema_id)?;
    validate::schema_version(req.schema_version)?;
    if let Some(m) = &req.mutation_id {
        validate::id("mutationId", m)?;
        if let Some(seen) = &facts.replay {
            return Ok(DocumentDecision::Replay(seen.clone()));
        }
    }
    let expected = match (if_match, req.expected_version) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid("If-Match and expectedVersion disagree"))
        }
        (a, b) => a.or(b),
    };
    let text = serde_json::to_string(&req.value)
        .map_err(|e| Error::invalid(format!("value cannot be stored: {e}")))?;
    let size = text.len() as u64;
    if size > MAX_DOCUMENT_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("a document may hold at most {MAX_DOCUMENT_BYTES} bytes of JSON"),
        )
        .with_detail(serde_json::json!({"size": size, "limit": MAX_DOCUMENT_BYTES})));
    }
    let contract = Contract {
        backend: Backend::D1Json,
        schema_id: req.schema_id.clone(),
        schema_version: req.schema_version,
    };
    if let Some(existing) = &facts.bucket {
        check_compatible(existing, &contract)?;
    }
    let (current_version, old_size) = facts.current.unwrap_or((0, 0));
    if let Some(expected) = expected {
        if expected != current_version {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("the document is at version {current_version}, not {expected}"),
            )
            .with_detail(serde_json::json!({"currentVersion": current_version})));
        }
    }
    if size > old_size {
        quota::check(facts.used, facts.reserved, size - old_size, facts.limit)?;
    }
    Ok(DocumentDecision::Write(DocumentWrite {
        version: facts.version_floor.max(current_version) + 1,
        delta: size as i64 - old_size as i64,
        text,
        size,
        contract,
    }))
}

/// A user's quota position, read in the write's transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotaFacts {
    /// Settled bytes.
    pub used: u64,
    /// Bytes reserved by uploads in flight.
    pub reserved: u64,
    /// The plan's limit.
    pub limit: u64,
}

/// Seed 000 upload rules, checked before a byte is stored: the bucket id grammar, the size
/// limit, the bucket's contract (INCOMPATIBLE_BUCKET) and the quota for the declared length
/// (QUOTA_EXCEEDED), counting other uploads' reservations. Ok means: reserve `declared` bytes.
pub fn decide_upload(
    bucket_id: &str,
    wanted: &Contract,
    existing: Option<&Contract>,
    declared: u64,
    max_upload: u64,
    quota: QuotaFacts,
) -> Result<(), Error> {
    validate::bucket_id(bucket_id)?;
    if declared > max_upload {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("uploads are limited to {max_upload} bytes"),
        ));
    }
    if let Some(existing) = existing {
        check_compatible(existing, wanted)?;
    }
    quota::check(quota.used, quota.reserved, declared, quota.limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(value: serde_json::Value) -> PutDocument {
        PutDocument {
            value,
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
            mutation_id: None,
            expected_version: None,
        }
    }

    fn facts() -> DocumentFacts {
        DocumentFacts {
            limit: 1000,
            ..Default::default()
        }
    }

    fn write(d: DocumentDecision) -> DocumentWrite {
        match d {
            DocumentDecision::Write(w) => w,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn uploads_check_size_contract_and_quota_with_reservations() {
        let c = Contract {
            backend: Backend::R2Assets,
            schema_id: "gallery.assets".into(),
            schema_version: 1,
        };
        let other = Contract {
            schema_version: 2,
            ..c.clone()
        };
        assert!(decide_upload(
            "b",
            &c,
            Some(&c),
            10,
            100,
            QuotaFacts {
                used: 0,
                reserved: 0,
                limit: 1000
            }
        )
        .is_ok());
        let code = |r: Result<(), Error>| r.unwrap_err().code;
        assert_eq!(
            code(decide_upload(
                "b",
                &c,
                None,
                101,
                100,
                QuotaFacts {
                    used: 0,
                    reserved: 0,
                    limit: 1000
                }
            )),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            code(decide_upload(
                "b",
                &c,
                Some(&other),
                1,
                100,
                QuotaFacts {
                    used: 0,
                    reserved: 0,
                    limit: 1000
                }
            )),
            ErrorCode::IncompatibleBucket
        );
        // Two uploads of 60 against 100 bytes of room: the second sees the first's reservation.
        assert!(decide_upload(
            "b",
            &c,
            None,
            60,
            100,
            QuotaFacts {
                used: 900,
                reserved: 0,
                limit: 1000
            }
        )
        .is_ok());
        assert_eq!(
            code(decide_upload(
                "b",
                &c,
                None,
                60,
                100,
                QuotaFacts {
                    used: 900,
                    reserved: 60,
                    limit: 1000
                }
            )),
            ErrorCode::QuotaExceeded
        );
    }

    #[test]
    fn first_write_creates_version_one_and_counts_its_bytes() {
        let w = write(decide_document_put("b", &req(json!({"a": 1})), None, &facts()).unwrap());
        assert_eq!((w.version, w.size, w.delta), (1, 7, 7));
        assert_eq!(w.text, r#"{"a":1}"#);
    }

    #[test]
    fn overwrite_refunds_and_versions_continue_past_deletion() {
        let f = DocumentFacts {
            current: Some((4, 100)),
            version_floor: 4,
            ..facts()
        };
        let w = write(decide_document_put("b", &req(json!(1)), None, &f).unwrap());
        assert_eq!((w.version, w.delta), (5, 1 - 100));
        let after_delete = DocumentFacts {
            version_floor: 9,
            ..facts()
        };
        let w = write(decide_document_put("b", &req(json!(1)), None, &after_delete).unwrap());
        assert_eq!(w.version, 10);
    }

    #[test]
    fn replay_wins_over_every_other_rule() {
        let seen = DocumentMeta {
            bucket_id: "b".into(),
            version: 3,
            size: 2,
            updated_at: 1,
        };
        let mut r = req(json!("x".repeat(2_000_000)));
        r.mutation_id = Some("m".into());
        r.expected_version = Some(99);
        let f = DocumentFacts {
            replay: Some(seen.clone()),
            ..facts()
        };
        assert_eq!(
            decide_document_put("b", &r, None, &f).unwrap(),
            DocumentDecision::Replay(seen)
        );
    }

    #[test]
    fn conflicts_contracts_size_and_quota() {
        let f = DocumentFacts {
            current: Some((2, 1)),
            ..facts()
        };
        let e = decide_document_put("b", &req(json!(1)), Some(1), &f).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(e.detail.unwrap()["currentVersion"], 2);
        let mut r = req(json!(1));
        r.expected_version = Some(0);
        assert_eq!(
            decide_document_put("b", &r, None, &f).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(
            decide_document_put("b", &r, Some(2), &f).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let other = DocumentFacts {
            bucket: Some(Contract {
                backend: Backend::D1Json,
                schema_id: "todo".into(),
                schema_version: 1,
            }),
            ..facts()
        };
        assert_eq!(
            decide_document_put("b", &req(json!(1)), None, &other)
                .unwrap_err()
                .code,
            ErrorCode::IncompatibleBucket
        );
        let big = json!("x".repeat(MAX_DOCUMENT_BYTES as usize));
        assert_eq!(
            decide_document_put("b", &req(big), None, &facts())
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
        let full = DocumentFacts {
            used: 995,
            ..facts()
        };
        assert_eq!(
            decide_document_put("b", &req(json!("123456")), None, &full)
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
        // Shrinking always fits.
        let shrinking = DocumentFacts {
            used: 1000,
            current: Some((1, 50)),
            ..facts()
        };
        assert!(decide_document_put("b", &req(json!(1)), None, &shrinking).is_ok());
        assert_eq!(
            decide_document_put("../x", &req(json!(1)), None, &facts())
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
    }

    fn contract() -> Contract {
        Contract {
            backend: Backend::R2Assets,
            schema_id: "gallery.assets".into(),
            schema_version: 1,
        }
    }

    fn room(used: u64, reserved: u64, limit: u64) -> QuotaFacts {
        QuotaFacts {
            used,
            reserved,
            limit,
        }
    }

    #[test]
    fn an_upload_of_exactly_the_limits_is_allowed_and_one_byte_more_is_not() {
        let c = contract();
        // Size limit: exactly max_upload passes, max_upload + 1 does not.
        assert!(decide_upload("b", &c, None, 100, 100, room(0, 0, 1000)).is_ok());
        assert_eq!(
            decide_upload("b", &c, None, 101, 100, room(0, 0, 1000))
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
        // Quota: used + reserved + declared == limit fits, one more byte does not.
        assert!(decide_upload("b", &c, None, 10, 100, room(80, 10, 100)).is_ok());
        assert_eq!(
            decide_upload("b", &c, None, 11, 100, room(80, 10, 100))
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
        // A sum past u64::MAX never fits, even against the largest limit.
        assert_eq!(
            decide_upload("b", &c, None, 2, u64::MAX, room(u64::MAX - 1, 0, u64::MAX))
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
        assert_eq!(
            decide_upload("b", &c, None, 1, 100, room(0, u64::MAX, u64::MAX))
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
        // The size check comes before the contract and the quota.
        let other = Contract {
            schema_version: 2,
            ..c.clone()
        };
        assert_eq!(
            decide_upload("b", &c, Some(&other), 101, 100, room(1000, 0, 0))
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            decide_upload("../b", &c, None, 1, 100, room(0, 0, 1000))
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn a_document_of_exactly_the_size_limit_is_stored_and_one_byte_more_is_not() {
        let roomy = DocumentFacts {
            limit: u64::MAX,
            ..Default::default()
        };
        // A JSON string's text is its characters plus two quotes.
        let at_limit = json!("x".repeat(MAX_DOCUMENT_BYTES as usize - 2));
        let w = write(decide_document_put("b", &req(at_limit), None, &roomy).unwrap());
        assert_eq!(w.size, MAX_DOCUMENT_BYTES);
        let over = json!("x".repeat(MAX_DOCUMENT_BYTES as usize - 1));
        let e = decide_document_put("b", &req(over), None, &roomy).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
        assert_eq!(e.detail.unwrap()["size"], MAX_DOCUMENT_BYTES + 1);
    }

    #[test]
    fn document_growth_is_checked_against_exactly_the_room_left() {
        // "12345" is 7 bytes of JSON; 3 are stored already, so it grows by 4.
        let f = |used| DocumentFacts {
            used,
            reserved: 10,
            current: Some((1, 3)),
            limit: 100,
            ..Default::default()
        };
        let w = write(decide_document_put("b", &req(json!("12345")), None, &f(86)).unwrap());
        assert_eq!((w.delta, w.version), (4, 2));
        assert_eq!(
            decide_document_put("b", &req(json!("12345")), None, &f(87))
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
        // Growth past u64::MAX never fits.
        let huge = DocumentFacts {
            used: u64::MAX,
            limit: u64::MAX,
            ..Default::default()
        };
        assert_eq!(
            decide_document_put("b", &req(json!(1)), None, &huge)
                .unwrap_err()
                .code,
            ErrorCode::QuotaExceeded
        );
    }

    #[test]
    fn expected_version_zero_means_must_not_exist() {
        let mut r = req(json!(1));
        r.expected_version = Some(0);
        let w = write(decide_document_put("b", &r, Some(0), &facts()).unwrap());
        assert_eq!(w.version, 1);
        // The version floor of a deleted bucket does not make the document exist.
        let deleted = DocumentFacts {
            version_floor: 7,
            ..facts()
        };
        assert_eq!(
            write(decide_document_put("b", &r, None, &deleted).unwrap()).version,
            8
        );
    }

    #[test]
    fn input_grammar_is_checked_before_a_replay() {
        let seen = DocumentMeta {
            bucket_id: "b".into(),
            version: 1,
            size: 1,
            updated_at: 1,
        };
        let f = DocumentFacts {
            replay: Some(seen),
            ..facts()
        };
        let mut r = req(json!(1));
        r.mutation_id = Some(String::new());
        assert_eq!(
            decide_document_put("b", &r, None, &f).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        r.mutation_id = Some("m".into());
        r.schema_version = 0;
        assert_eq!(
            decide_document_put("b", &r, None, &f).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
