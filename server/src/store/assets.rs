//! r2-assets metadata: reservations before streaming, settlement after, listing and deletion.
//! Object bytes live in the object store under server-generated keys; names are metadata.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::{buckets, quota, rules, users::UserRow, validate};
use monodit_core::api::Contract;
use monodit_core::buckets::Backend;
use monodit_service::uploads::{replay_key, KnownKey};
use rusqlite::{params, OptionalExtension, Transaction};

/// Longest stored file name, in characters.
pub use monodit_service::assets::MAX_NAME_CHARS;

/// An asset row (the URL is added by the HTTP layer, which knows the public base URL).
#[derive(Debug, Clone)]
pub struct AssetRow {
    /// Server-generated key.
    pub object_key: String,
    /// Sanitised file name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Normalised MIME type (`type/subtype`).
    pub content_type: String,
    /// Epoch ms.
    pub uploaded_at: i64,
}

/// A new object key: 128 random bits as hex, never derived from user input.
pub fn new_object_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Object key shape and display names, from the service layer (shared with the Worker).
pub use monodit_service::assets::{is_object_key, sanitize_name};

/// What a single-shot upload is about to write: recorded with its reservation, before the
/// first byte reaches the store.
pub struct UploadIntent<'a> {
    /// The new object's key ([`new_object_key`]).
    pub object_key: &'a str,
    /// The request's `Idempotency-Key`, if any ([`crate::store::uploads::validate_idempotency_key`]).
    pub idempotency_key: Option<&'a str>,
    /// Sanitised name.
    pub name: &'a str,
    /// Normalised content type.
    pub content_type: &'a str,
}

/// What [`reserve`] decided.
#[derive(Debug)]
pub enum Reservation {
    /// Bytes reserved and the object recorded as pending: stream it, then [`settle`].
    Fresh,
    /// The idempotency key already produced this asset: answer it, store nothing.
    Replay(AssetRow),
}

/// Records that `object_key` is about to be written (a single-shot upload, or the completion
/// of resumable `upload_id`): the sweep leaves it alone until [`take_pending`].
pub fn add_pending(
    tx: &Transaction<'_>,
    object_key: &str,
    user_id: &str,
    upload_id: Option<&str>,
) -> AppResult<()> {
    tx.execute(
        "INSERT INTO pending_objects (object_key, user_id, upload_id, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![object_key, user_id, upload_id, now_ms()],
    )?;
    Ok(())
}

/// Ends a pending record; false when there was none (a restart forgot it, so the sweep may
/// already have taken the object: the caller must not record an asset for it).
pub fn take_pending(tx: &Transaction<'_>, object_key: &str) -> AppResult<bool> {
    Ok(tx.execute(
        "DELETE FROM pending_objects WHERE object_key = ?1",
        params![object_key],
    )? == 1)
}

/// Marks an object for deletion, in the transaction that hides it (its row gone, its bytes
/// refunded): [`forget_doomed`] once the object is deleted; the sweep retries until then.
pub fn doom(tx: &Transaction<'_>, object_key: &str) -> AppResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) VALUES (?1, ?2)",
        params![object_key, now_ms()],
    )?;
    Ok(())
}

/// Objects whose deletion is still to be done (oldest first, at most `limit`).
pub fn doomed(tx: &Transaction<'_>, limit: u32) -> AppResult<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT object_key FROM doomed_objects ORDER BY created_at, object_key LIMIT ?1",
    )?;
    let keys = stmt
        .query_map(params![limit], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(keys)
}

/// Ends the deletion records of objects that are gone from the store.
pub fn forget_doomed(tx: &Transaction<'_>, object_keys: &[String]) -> AppResult<()> {
    let mut stmt = tx.prepare_cached("DELETE FROM doomed_objects WHERE object_key = ?1")?;
    for k in object_keys {
        stmt.execute(params![k])?;
    }
    Ok(())
}

/// Before streaming: replays an idempotency key that already produced an asset (CONFLICT
/// while its first request still streams), else asks [`rules::decide_upload`] (size,
/// contract, quota with other reservations), reserves the declared bytes and records the
/// object as pending. The bucket itself is created only when the upload settles.
pub fn reserve(
    tx: &Transaction<'_>,
    user: &UserRow,
    bucket_id: &str,
    contract: &Contract,
    bytes: u64,
    max_upload: u64,
    intent: &UploadIntent<'_>,
) -> AppResult<Reservation> {
    validate::bucket_id(bucket_id)?;
    if let Some(key) = intent.idempotency_key {
        let known = tx
            .query_row(
                "SELECT done, object_key, name, size, content_type, uploaded_at \
                 FROM asset_upload_keys WHERE user_id = ?1 AND idem_key = ?2",
                params![user.id, key],
                |r| {
                    Ok((
                        r.get::<_, bool>(0)?,
                        AssetRow {
                            object_key: r.get(1)?,
                            name: r.get(2)?,
                            size: r.get::<_, i64>(3)?.max(0) as u64,
                            content_type: r.get(4)?,
                            uploaded_at: r.get(5)?,
                        },
                    ))
                },
            )
            .optional()?;
        let known = match known {
            Some((true, row)) => KnownKey::Done(row),
            Some((false, _)) => KnownKey::InProgress,
            None => KnownKey::Unknown,
        };
        if let Some(row) = replay_key(known)? {
            return Ok(Reservation::Replay(row));
        }
    }
    let existing = buckets::get(tx, &user.id, Backend::R2Assets, bucket_id)?;
    let (used, reserved) = quota::usage(tx, &user.id)?;
    rules::decide_upload(
        bucket_id,
        contract,
        existing.as_ref().map(|b| &b.contract),
        bytes,
        max_upload,
        rules::QuotaFacts {
            used,
            reserved,
            limit: user.limit_bytes(),
        },
    )?;
    quota::add_reservation(tx, &user.id, bytes)?;
    add_pending(tx, intent.object_key, &user.id, None)?;
    if let Some(key) = intent.idempotency_key {
        tx.execute(
            "INSERT INTO asset_upload_keys (user_id, idem_key, object_key, done, bucket_id, name, \
             size, content_type, uploaded_at, created_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, 0, ?6, 0, ?7)",
            params![
                user.id,
                key,
                intent.object_key,
                bucket_id,
                intent.name,
                intent.content_type,
                now_ms()
            ],
        )?;
    }
    Ok(Reservation::Fresh)
}

/// After a successful stream: ends the pending record, releases the reservation, counts the
/// bytes, records the asset, moves the bucket's change counter and completes the request's
/// idempotency key. If the bucket changed contract or was deleted while the upload streamed,
/// it is (re)created or the upload is refused like any other.
pub fn settle(
    tx: &Transaction<'_>,
    user: &UserRow,
    bucket_id: &str,
    contract: &Contract,
    reserved: u64,
    row: &AssetRow,
) -> AppResult<u64> {
    if !take_pending(tx, &row.object_key)? {
        return Err(AppError::internal(
            "upload settlement",
            "the pending object was forgotten (server restarted?)",
        ));
    }
    quota::release(tx, &user.id, reserved)?;
    let bucket = buckets::ensure(tx, &user.id, bucket_id, contract)?;
    tx.execute(
        "INSERT INTO assets (object_key, user_id, bucket_id, name, size, content_type, uploaded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.object_key,
            user.id,
            bucket_id,
            row.name,
            row.size as i64,
            row.content_type,
            row.uploaded_at
        ],
    )?;
    let version = bucket.version + 1;
    buckets::set_usage(
        tx,
        &user.id,
        Backend::R2Assets,
        bucket_id,
        bucket.bytes + row.size,
        version,
    )?;
    quota::adjust_used(tx, &user.id, row.size as i64, false)?;
    tx.execute(
        "UPDATE asset_upload_keys SET done = 1, size = ?3, uploaded_at = ?4 \
         WHERE user_id = ?1 AND object_key = ?2 AND done = 0",
        params![user.id, row.object_key, row.size as i64, row.uploaded_at],
    )?;
    Ok(version)
}

/// After a failed stream: gives the reservation back, turns the pending record into a
/// deletion record and frees the idempotency key (a retry may upload again). The caller
/// deletes the object afterwards; if it cannot (a crash), the sweep does.
pub fn abandon(
    tx: &Transaction<'_>,
    user_id: &str,
    reserved: u64,
    object_key: &str,
) -> AppResult<()> {
    quota::release(tx, user_id, reserved)?;
    take_pending(tx, object_key)?;
    doom(tx, object_key)?;
    tx.execute(
        "DELETE FROM asset_upload_keys WHERE user_id = ?1 AND object_key = ?2 AND done = 0",
        params![user_id, object_key],
    )?;
    Ok(())
}

/// Assets of a bucket, oldest first, with the bucket's change counter (0 if it does not exist).
pub fn list(
    tx: &Transaction<'_>,
    user_id: &str,
    bucket_id: &str,
) -> AppResult<(u64, Vec<AssetRow>)> {
    validate::bucket_id(bucket_id)?;
    let version = buckets::get(tx, user_id, Backend::R2Assets, bucket_id)?
        .map(|b| b.version)
        .unwrap_or(0);
    let mut stmt = tx.prepare_cached(
        "SELECT object_key, name, size, content_type, uploaded_at FROM assets \
         WHERE user_id = ?1 AND bucket_id = ?2 ORDER BY uploaded_at, object_key",
    )?;
    let rows = stmt
        .query_map(params![user_id, bucket_id], |r| {
            Ok(AssetRow {
                object_key: r.get(0)?,
                name: r.get(1)?,
                size: r.get::<_, i64>(2)?.max(0) as u64,
                content_type: r.get(3)?,
                uploaded_at: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((version, rows))
}

/// Deletes one asset row of this user's bucket, refunds its bytes exactly, moves the change
/// counter and records the object for deletion ([`doom`]): hidden and refunded first, the
/// bytes go after. NOT_FOUND when the key is not in that bucket (or belongs to someone else).
pub fn delete(
    tx: &Transaction<'_>,
    user_id: &str,
    bucket_id: &str,
    object_key: &str,
) -> AppResult<()> {
    validate::bucket_id(bucket_id)?;
    let not_found =
        || AppError::not_found(format!("no asset {object_key:?} in bucket {bucket_id:?}"));
    if !is_object_key(object_key) {
        return Err(not_found());
    }
    let size: i64 = tx
        .query_row(
            "SELECT size FROM assets WHERE object_key = ?1 AND user_id = ?2 AND bucket_id = ?3",
            params![object_key, user_id, bucket_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(not_found)?;
    tx.execute(
        "DELETE FROM assets WHERE object_key = ?1",
        params![object_key],
    )?;
    doom(tx, object_key)?;
    if let Some(bucket) = buckets::get(tx, user_id, Backend::R2Assets, bucket_id)? {
        buckets::set_usage(
            tx,
            user_id,
            Backend::R2Assets,
            bucket_id,
            bucket.bytes.saturating_sub(size.max(0) as u64),
            bucket.version + 1,
        )?;
    }
    quota::adjust_used(tx, user_id, -size.max(0), false)?;
    Ok(())
}

/// The asset behind a signed download URL (any user: the signature is the authorisation).
pub fn by_key(tx: &Transaction<'_>, object_key: &str) -> AppResult<Option<AssetRow>> {
    Ok(tx
        .query_row(
            "SELECT object_key, name, size, content_type, uploaded_at FROM assets WHERE object_key = ?1",
            params![object_key],
            |r| {
                Ok(AssetRow {
                    object_key: r.get(0)?,
                    name: r.get(1)?,
                    size: r.get::<_, i64>(2)?.max(0) as u64,
                    content_type: r.get(3)?,
                    uploaded_at: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Current time, re-exported for the upload path.
pub fn uploaded_now() -> i64 {
    now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reduced_to_a_safe_last_component() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_name(""), "file");
        assert_eq!(sanitize_name("../"), "file");
        assert_eq!(sanitize_name(".htaccess"), "htaccess");
        assert_eq!(sanitize_name("a\u{0}b\u{202e}c.png"), "abc.png");
        assert_eq!(sanitize_name(&"x".repeat(400)).len(), MAX_NAME_CHARS);
    }
}
