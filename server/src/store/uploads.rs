//! Resumable uploads (`/v1/uploads`): sessions that reserve their whole size up front, parts
//! recorded as they are staged, completion into an asset, abort and expiry.
//!
//! A session is `open` until completed (`done`, naming its asset) or removed (aborted or
//! expired: its row goes, so later calls are NOT_FOUND). An open session holds `size` bytes
//! in `users.reserved_bytes`; every way out of `open` gives them back in the same transaction.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::assets::{self, AssetRow};
use crate::store::{buckets, quota, rules, users::UserRow, validate};
use monodit_core::api::{Contract, NewUpload, UploadPart, UPLOAD_PART_SIZE};
use monodit_core::buckets::Backend;
use monodit_core::ErrorCode;
use monodit_service::uploads as service;
use rusqlite::{params, OptionalExtension, Transaction};

/// How long a completed session (or a single-shot idempotency key) is remembered at least
/// after the asset it produced is gone: 24 hours.
pub const KEY_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// Checks an idempotency key: 1-128 characters of `[A-Za-z0-9_-]` (the service layer's rule).
pub fn validate_idempotency_key(key: &str) -> AppResult<()> {
    monodit_service::validate::idempotency_key(key).map_err(AppError::from)
}

/// A session row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Server-generated id (32 hex digits).
    pub upload_id: String,
    /// Owner.
    pub user_id: String,
    /// Target bucket.
    pub bucket_id: String,
    /// The bucket contract the upload was started with.
    pub contract: Contract,
    /// Sanitised name.
    pub name: String,
    /// Normalised content type.
    pub content_type: String,
    /// Total bytes (reserved while open).
    pub size: u64,
    /// Bytes per part.
    pub part_size: u64,
    /// The asset, once completed.
    pub completed: Option<AssetRow>,
    /// Last touched, epoch ms (expiry counts from here).
    pub touched_at: i64,
}

/// A session with the parts stored so far.
#[derive(Debug, Clone)]
pub struct Session {
    /// The row.
    pub row: SessionRow,
    /// Stored parts, by number.
    pub parts: Vec<UploadPart>,
}

fn is_upload_id(id: &str) -> bool {
    assets::is_object_key(id)
}

fn not_found(upload_id: &str) -> AppError {
    AppError::not_found(format!("no upload {upload_id:?}"))
}

const SESSION_COLUMNS: &str = "upload_id, user_id, bucket_id, schema_id, schema_version, name, \
     content_type, size, part_size, state, object_key, uploaded_at, touched_at";

fn session_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    let state: String = r.get(9)?;
    let object_key: Option<String> = r.get(10)?;
    let size = r.get::<_, i64>(7)?.max(0) as u64;
    let name: String = r.get(5)?;
    let content_type: String = r.get(6)?;
    let completed = match (state.as_str(), object_key) {
        ("done", Some(object_key)) => Some(AssetRow {
            object_key,
            name: name.clone(),
            size,
            content_type: content_type.clone(),
            uploaded_at: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
        }),
        _ => None,
    };
    Ok(SessionRow {
        upload_id: r.get(0)?,
        user_id: r.get(1)?,
        bucket_id: r.get(2)?,
        contract: Contract {
            backend: Backend::R2Assets,
            schema_id: r.get(3)?,
            schema_version: r.get::<_, i64>(4)?.max(0) as u32,
        },
        name,
        content_type,
        size,
        part_size: r.get::<_, i64>(8)?.max(1) as u64,
        completed,
        touched_at: r.get(12)?,
    })
}

fn parts_of(tx: &Transaction<'_>, upload_id: &str) -> AppResult<Vec<UploadPart>> {
    let mut stmt = tx.prepare_cached(
        "SELECT part_number, size FROM upload_parts WHERE upload_id = ?1 ORDER BY part_number",
    )?;
    let parts = stmt
        .query_map(params![upload_id], |r| {
            Ok(UploadPart {
                part_number: r.get::<_, i64>(0)?.max(0) as u32,
                size: r.get::<_, i64>(1)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts)
}

/// The caller's session `upload_id`: NOT_FOUND when unknown, another user's, or open and
/// untouched for longer than `ttl_ms` (the sweep removes it soon).
pub fn get(
    tx: &Transaction<'_>,
    user_id: &str,
    upload_id: &str,
    ttl_ms: i64,
) -> AppResult<Session> {
    if !is_upload_id(upload_id) {
        return Err(not_found(upload_id));
    }
    let row = tx
        .query_row(
            &format!("SELECT {SESSION_COLUMNS} FROM uploads WHERE upload_id = ?1 AND user_id = ?2"),
            params![upload_id, user_id],
            session_from,
        )
        .optional()?
        .ok_or_else(|| not_found(upload_id))?;
    if row.completed.is_none() && row.touched_at + ttl_ms < now_ms() {
        return Err(not_found(upload_id));
    }
    let parts = parts_of(tx, upload_id)?;
    Ok(Session { row, parts })
}

/// `POST /v1/uploads`: the session this idempotency key already names (completed or not),
/// or a new one after the single-shot checks ([`rules::decide_upload`]), reserving `size`.
/// The caller's expired sessions are removed first, so their bytes never block a new one;
/// their ids come back in the second value (their staging is to be deleted).
pub fn create(
    tx: &Transaction<'_>,
    user: &UserRow,
    req: &NewUpload,
    name: &str,
    content_type: &str,
    max_upload: u64,
    ttl_ms: i64,
) -> AppResult<(Session, Vec<String>)> {
    validate_idempotency_key(&req.idempotency_key)?;
    validate::bucket_id(&req.bucket_id)?;
    validate::schema_id(&req.schema_id)?;
    validate::schema_version(req.schema_version)?;
    let expired = expire(tx, Some(&user.id), ttl_ms)?;
    let known: Option<String> = tx
        .query_row(
            "SELECT upload_id FROM uploads WHERE user_id = ?1 AND idem_key = ?2",
            params![user.id, req.idempotency_key],
            |r| r.get(0),
        )
        .optional()?;
    // Checked before the key, so an oversized request is refused whatever it names.
    service::check_session_size(req.size, max_upload)?;
    let asked = service::SessionKey {
        bucket_id: &req.bucket_id,
        size: req.size,
        schema_id: &req.schema_id,
        schema_version: req.schema_version,
    };
    if let Some(upload_id) = known {
        let session = get(tx, &user.id, &upload_id, ttl_ms)?;
        let r = &session.row;
        // A retry repeats its request; the same key on another upload is a client bug that
        // must not be answered with an unrelated session (or its asset).
        service::same_session(
            service::SessionKey {
                bucket_id: &r.bucket_id,
                size: r.size,
                schema_id: &r.contract.schema_id,
                schema_version: r.contract.schema_version,
            },
            asked,
        )?;
        return Ok((session, expired));
    }
    let contract = service::session_contract(&req.schema_id, req.schema_version);
    let existing = buckets::get(tx, &user.id, Backend::R2Assets, &req.bucket_id)?;
    let (used, reserved) = quota::usage(tx, &user.id)?;
    rules::decide_upload(
        &req.bucket_id,
        &contract,
        existing.as_ref().map(|b| &b.contract),
        req.size,
        max_upload,
        rules::QuotaFacts {
            used,
            reserved,
            limit: user.limit_bytes(),
        },
    )?;
    quota::add_reservation(tx, &user.id, req.size)?;
    let upload_id = assets::new_object_key();
    let now = now_ms();
    tx.execute(
        "INSERT INTO uploads (upload_id, user_id, idem_key, bucket_id, schema_id, schema_version, \
         name, content_type, size, part_size, state, touched_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11, ?11)",
        params![
            upload_id,
            user.id,
            req.idempotency_key,
            req.bucket_id,
            req.schema_id,
            req.schema_version,
            name,
            content_type,
            req.size as i64,
            UPLOAD_PART_SIZE as i64,
            now
        ],
    )?;
    Ok((get(tx, &user.id, &upload_id, ttl_ms)?, expired))
}

/// Whether a completion of `upload_id` is running (its object is pending).
fn completing(tx: &Transaction<'_>, upload_id: &str) -> AppResult<bool> {
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM pending_objects WHERE upload_id = ?1",
        params![upload_id],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?)
}

/// Refuses anything but an open session that is not being completed (CONFLICT: a part
/// stored now could miss the asset being assembled).
fn require_open(tx: &Transaction<'_>, session: &Session) -> AppResult<()> {
    let completed = session.row.completed.is_some();
    // Only an open session can be completing; skip the lookup for a completed one.
    let running = !completed && completing(tx, &session.row.upload_id)?;
    Ok(service::require_open(completed, running)?)
}

/// Before a part streams: the byte length part `part_number` must have (INVALID_ARGUMENT
/// outside the upload).
pub fn part_len(
    tx: &Transaction<'_>,
    user_id: &str,
    upload_id: &str,
    part_number: u32,
    ttl_ms: i64,
) -> AppResult<u64> {
    let session = get(tx, user_id, upload_id, ttl_ms)?;
    require_open(tx, &session)?;
    Ok(service::part_len(
        session.row.size,
        session.row.part_size,
        part_number,
    )?)
}

/// After a part's file is in place: records it (replacing an earlier put) and touches the
/// session.
pub fn record_part(
    tx: &Transaction<'_>,
    user_id: &str,
    upload_id: &str,
    part: UploadPart,
    ttl_ms: i64,
) -> AppResult<()> {
    let session = get(tx, user_id, upload_id, ttl_ms)?;
    require_open(tx, &session)?;
    tx.execute(
        "INSERT INTO upload_parts (upload_id, part_number, size) VALUES (?1, ?2, ?3) \
         ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size",
        params![upload_id, part.part_number, part.size as i64],
    )?;
    tx.execute(
        "UPDATE uploads SET touched_at = ?2 WHERE upload_id = ?1",
        params![upload_id, now_ms()],
    )?;
    Ok(())
}

/// Forgets a part whose staged file turned out missing or short (it is reported missing).
pub fn drop_part(tx: &Transaction<'_>, upload_id: &str, part_number: u32) -> AppResult<()> {
    tx.execute(
        "DELETE FROM upload_parts WHERE upload_id = ?1 AND part_number = ?2",
        params![upload_id, part_number],
    )?;
    Ok(())
}

/// What [`begin_complete`] decided.
#[derive(Debug)]
pub enum Completion {
    /// Already completed: answer this asset again.
    Done(AssetRow),
    /// Assemble the parts into `object_key` (recorded as pending), then [`finish_complete`].
    Assemble(Session),
}

/// `POST /v1/uploads/{uploadId}/complete`, first step: every part must be stored (CONFLICT
/// with `detail.missing`), and only one completion runs at a time (CONFLICT: retry later).
pub fn begin_complete(
    tx: &Transaction<'_>,
    user_id: &str,
    upload_id: &str,
    object_key: &str,
    ttl_ms: i64,
) -> AppResult<Completion> {
    let session = get(tx, user_id, upload_id, ttl_ms)?;
    if let Some(done) = &session.row.completed {
        return Ok(Completion::Done(done.clone()));
    }
    let stored: Vec<u32> = session.parts.iter().map(|p| p.part_number).collect();
    service::check_complete(session.row.size, session.row.part_size, &stored)?;
    if completing(tx, upload_id)? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this upload is being completed; retry later",
        ));
    }
    assets::add_pending(tx, object_key, user_id, Some(upload_id))?;
    tx.execute(
        "UPDATE uploads SET touched_at = ?2 WHERE upload_id = ?1",
        params![upload_id, now_ms()],
    )?;
    Ok(Completion::Assemble(session))
}

/// Second step, once the object is stored: settles it as an asset (releasing the
/// reservation, charging the bytes) and marks the session done, in one transaction.
/// NOT_FOUND when the session was aborted meanwhile (the caller deletes the object).
pub fn finish_complete(
    tx: &Transaction<'_>,
    user: &UserRow,
    upload_id: &str,
    row: &AssetRow,
) -> AppResult<()> {
    let state: Option<String> = tx
        .query_row(
            "SELECT state FROM uploads WHERE upload_id = ?1 AND user_id = ?2",
            params![upload_id, user.id],
            |r| r.get(0),
        )
        .optional()?;
    if state.as_deref() != Some("open") {
        return Err(not_found(upload_id));
    }
    let (bucket_id, contract, size) = tx.query_row(
        "SELECT bucket_id, schema_id, schema_version, size FROM uploads WHERE upload_id = ?1",
        params![upload_id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                Contract {
                    backend: Backend::R2Assets,
                    schema_id: r.get(1)?,
                    schema_version: r.get::<_, i64>(2)?.max(0) as u32,
                },
                r.get::<_, i64>(3)?.max(0) as u64,
            ))
        },
    )?;
    assets::settle(tx, user, &bucket_id, &contract, size, row)?;
    tx.execute(
        "UPDATE uploads SET state = 'done', object_key = ?2, uploaded_at = ?3, touched_at = ?3 \
         WHERE upload_id = ?1",
        params![upload_id, row.object_key, row.uploaded_at],
    )?;
    tx.execute(
        "DELETE FROM upload_parts WHERE upload_id = ?1",
        params![upload_id],
    )?;
    Ok(())
}

/// A completion that failed before [`finish_complete`]: its pending record becomes a
/// deletion record (the caller deletes the object; the session stays open for another try).
pub fn abandon_complete(tx: &Transaction<'_>, object_key: &str) -> AppResult<()> {
    assets::take_pending(tx, object_key)?;
    assets::doom(tx, object_key)
}

/// Removes an open session and releases its reservation (the caller deletes its staging).
fn remove_open(tx: &Transaction<'_>, user_id: &str, upload_id: &str, size: u64) -> AppResult<()> {
    quota::release(tx, user_id, size)?;
    tx.execute(
        "DELETE FROM upload_parts WHERE upload_id = ?1",
        params![upload_id],
    )?;
    tx.execute(
        "DELETE FROM uploads WHERE upload_id = ?1",
        params![upload_id],
    )?;
    Ok(())
}

/// `DELETE /v1/uploads/{uploadId}`: an open session is removed and its reservation
/// released; a completed one is CONFLICT (delete the asset instead), and so is one being
/// completed right now.
pub fn abort(tx: &Transaction<'_>, user_id: &str, upload_id: &str, ttl_ms: i64) -> AppResult<()> {
    let session = get(tx, user_id, upload_id, ttl_ms)?;
    if session.row.completed.is_some() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this upload is completed: delete its asset instead",
        ));
    }
    if completing(tx, upload_id)? {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this upload is being completed; retry later",
        ));
    }
    remove_open(tx, user_id, upload_id, session.row.size)
}

/// Removes open sessions untouched for longer than `ttl_ms` (of one user, or all), releasing
/// their reservations; a session being completed is left alone. Returns their ids.
pub fn expire(tx: &Transaction<'_>, user_id: Option<&str>, ttl_ms: i64) -> AppResult<Vec<String>> {
    let cutoff = now_ms() - ttl_ms;
    let mut stmt = tx.prepare_cached(
        "SELECT upload_id, user_id, size FROM uploads WHERE state = 'open' AND touched_at < ?1 \
         AND (?2 IS NULL OR user_id = ?2) \
         AND upload_id NOT IN (SELECT upload_id FROM pending_objects WHERE upload_id IS NOT NULL)",
    )?;
    let stale = stmt
        .query_map(params![cutoff, user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (upload_id, owner, size) in &stale {
        remove_open(tx, owner, upload_id, *size)?;
    }
    Ok(stale.into_iter().map(|(id, _, _)| id).collect())
}

/// Forgets completed sessions and single-shot idempotency keys older than
/// [`KEY_MEMORY_MS`] whose asset no longer exists (while it exists, a retry still finds it).
pub fn prune_keys(tx: &Transaction<'_>) -> AppResult<()> {
    let cutoff = now_ms() - KEY_MEMORY_MS;
    tx.execute(
        "DELETE FROM uploads WHERE state = 'done' AND touched_at < ?1 \
         AND object_key NOT IN (SELECT object_key FROM assets)",
        params![cutoff],
    )?;
    tx.execute(
        "DELETE FROM asset_upload_keys WHERE done = 1 AND created_at < ?1 \
         AND object_key NOT IN (SELECT object_key FROM assets)",
        params![cutoff],
    )?;
    Ok(())
}

/// Open sessions and their stored part numbers (for the staging sweep).
pub fn open_parts(
    tx: &Transaction<'_>,
) -> AppResult<std::collections::HashMap<String, std::collections::HashSet<u32>>> {
    let mut out: std::collections::HashMap<String, std::collections::HashSet<u32>> =
        Default::default();
    let mut stmt = tx.prepare("SELECT upload_id FROM uploads WHERE state = 'open'")?;
    for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
        out.insert(id?, Default::default());
    }
    let mut stmt = tx.prepare(
        "SELECT p.upload_id, p.part_number FROM upload_parts p \
         JOIN uploads u ON u.upload_id = p.upload_id WHERE u.state = 'open'",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (id, n) = row?;
        out.entry(id).or_default().insert(n.max(0) as u32);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_have_a_grammar() {
        assert!(validate_idempotency_key("a").is_ok());
        assert!(validate_idempotency_key(&"x".repeat(128)).is_ok());
        assert!(validate_idempotency_key("up_1-A").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key(&"x".repeat(129)).is_err());
        assert!(validate_idempotency_key("a b").is_err());
        assert!(validate_idempotency_key("a/b").is_err());
        assert!(validate_idempotency_key("é").is_err());
    }
}
