//! Upload decisions after the reservation ([`crate::rules::decide_upload`]): idempotency
//! replays of single-shot uploads, the idempotency key of resumable sessions, part sizes and
//! numbers, and when a session may change or complete.

use monodit_core::api::{upload_part_count, upload_part_len, Contract};
use monodit_core::{Error, ErrorCode};

/// What the store knows about an `Idempotency-Key` of a single-shot upload.
#[derive(Debug, Clone, PartialEq)]
pub enum KnownKey<A> {
    /// Never seen (or its request failed, which frees it).
    Unknown,
    /// A request with it is still streaming.
    InProgress,
    /// It produced this asset.
    Done(A),
}

/// The single-shot idempotency rule: a key that produced an asset answers that asset (store
/// and charge nothing), a key whose first request still streams is CONFLICT (retry later),
/// an unknown key goes on to the reservation (`Ok(None)`).
pub fn replay_key<A>(known: KnownKey<A>) -> Result<Option<A>, Error> {
    match known {
        KnownKey::Unknown => Ok(None),
        KnownKey::Done(asset) => Ok(Some(asset)),
        KnownKey::InProgress => Err(Error::new(
            ErrorCode::Conflict,
            "an upload with this Idempotency-Key is still in progress; retry later",
        )),
    }
}

/// A resumable session's request fields its idempotency key is bound to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionKey<'a> {
    /// Target bucket.
    pub bucket_id: &'a str,
    /// Total bytes.
    pub size: u64,
    /// Schema id of the bucket contract.
    pub schema_id: &'a str,
    /// Schema version of the bucket contract.
    pub schema_version: u32,
}

/// The size check of `POST /v1/uploads`, made before the idempotency key is looked at, so
/// an oversized request is refused whatever it names (PAYLOAD_TOO_LARGE past `max_upload`).
pub fn check_session_size(size: u64, max_upload: u64) -> Result<(), Error> {
    if size > max_upload {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("uploads are limited to {max_upload} bytes"),
        ));
    }
    Ok(())
}

/// A session's contract, the one its bucket must have.
pub fn session_contract(schema_id: &str, schema_version: u32) -> Contract {
    Contract {
        backend: monodit_core::buckets::Backend::R2Assets,
        schema_id: schema_id.to_string(),
        schema_version,
    }
}

/// A retry repeats its request: the same idempotency key with another bucket, size or schema
/// is a client bug that must not be answered with an unrelated session (CONFLICT).
pub fn same_session(stored: SessionKey<'_>, asked: SessionKey<'_>) -> Result<(), Error> {
    if stored == asked {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::Conflict,
            "this idempotencyKey already names another upload (bucket, size or schema differ)",
        ))
    }
}

/// Only an open session that is not being completed may take parts or be aborted (CONFLICT:
/// a part stored now could miss the asset being assembled).
pub fn require_open(completed: bool, completing: bool) -> Result<(), Error> {
    if completed {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this upload is already completed",
        ));
    }
    if completing {
        return Err(Error::new(
            ErrorCode::Conflict,
            "this upload is being completed; retry later",
        ));
    }
    Ok(())
}

/// The byte length part `part_number` of an upload of `size` bytes must have
/// (INVALID_ARGUMENT outside `1..=count`).
pub fn part_len(size: u64, part_size: u64, part_number: u32) -> Result<u64, Error> {
    upload_part_len(size, part_size, part_number).ok_or_else(|| {
        Error::invalid(format!(
            "part numbers of this upload run from 1 to {}",
            upload_part_count(size, part_size)
        ))
    })
}

/// A completion needs every part stored: CONFLICT with `detail.missing` (the part numbers
/// not stored, ascending) otherwise.
pub fn check_complete(size: u64, part_size: u64, stored: &[u32]) -> Result<(), Error> {
    let count = upload_part_count(size, part_size);
    let missing: Vec<u32> = (1..=count).filter(|n| !stored.contains(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::Conflict,
        format!("{} of {count} parts are not stored yet", missing.len()),
    )
    .with_detail(serde_json::json!({ "missing": missing })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_replay_their_asset_and_refuse_while_in_progress() {
        assert_eq!(replay_key::<u8>(KnownKey::Unknown).unwrap(), None);
        assert_eq!(replay_key(KnownKey::Done(7)).unwrap(), Some(7));
        assert_eq!(
            replay_key::<u8>(KnownKey::InProgress).unwrap_err().code,
            ErrorCode::Conflict
        );
    }

    #[test]
    fn a_session_key_answers_only_the_same_request() {
        let k = SessionKey {
            bucket_id: "b",
            size: 10,
            schema_id: "gallery.assets",
            schema_version: 1,
        };
        assert!(same_session(k, k).is_ok());
        for other in [
            SessionKey {
                bucket_id: "c",
                ..k
            },
            SessionKey { size: 11, ..k },
            SessionKey {
                schema_id: "x",
                ..k
            },
            SessionKey {
                schema_version: 2,
                ..k
            },
        ] {
            assert_eq!(
                same_session(k, other).unwrap_err().code,
                ErrorCode::Conflict
            );
        }
    }

    #[test]
    fn session_sizes_are_checked_at_exactly_the_limit() {
        assert!(check_session_size(100, 100).is_ok());
        assert_eq!(
            check_session_size(101, 100).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert!(check_session_size(0, 0).is_ok());
        assert_eq!(
            session_contract("gallery.assets", 2).backend,
            monodit_core::buckets::Backend::R2Assets
        );
    }

    #[test]
    fn only_open_sessions_change() {
        assert!(require_open(false, false).is_ok());
        assert_eq!(
            require_open(true, false).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(
            require_open(false, true).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert!(require_open(true, true)
            .unwrap_err()
            .message
            .contains("already completed"));
    }

    #[test]
    fn parts_have_exact_lengths_and_numbers() {
        // 25 bytes in parts of 10: 10, 10, 5.
        assert_eq!(part_len(25, 10, 1).unwrap(), 10);
        assert_eq!(part_len(25, 10, 2).unwrap(), 10);
        assert_eq!(part_len(25, 10, 3).unwrap(), 5);
        let e = part_len(25, 10, 4).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("1 to 3"), "{}", e.message);
        assert!(part_len(25, 10, 0).is_err());
        // Exactly two parts: no third, short one.
        assert_eq!(part_len(20, 10, 2).unwrap(), 10);
        assert!(part_len(20, 10, 3).is_err());
    }

    #[test]
    fn completion_lists_every_missing_part() {
        assert!(check_complete(25, 10, &[3, 1, 2]).is_ok());
        let e = check_complete(25, 10, &[2]).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(e.detail.unwrap()["missing"], serde_json::json!([1, 3]));
        assert!(e.message.starts_with("2 of 3"), "{}", e.message);
        // Parts past the end do not stand in for missing ones.
        let e = check_complete(20, 10, &[1, 3]).unwrap_err();
        assert_eq!(e.detail.unwrap()["missing"], serde_json::json!([2]));
    }
}
