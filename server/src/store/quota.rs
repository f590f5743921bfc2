//! Per-user quota across documents, assets, collections and key-value entries (seed 000 "Quotas").
//!
//! `users.used_bytes` is the settled total; `users.reserved_bytes` holds bytes promised to
//! uploads still streaming. Every check and every change runs inside the writer's transaction,
//! so two writes can never both pass a check that only one of them fits.

use crate::error::{AppError, AppResult};
use crate::store::users::UserRow;
use rusqlite::{params, Transaction};

/// The quota rule itself, free of I/O, from the service layer: `extra` more bytes fit when
/// settled usage plus open reservations plus `extra` stays within `limit` (checked
/// arithmetic: a sum past `u64::MAX` never fits).
pub use monodit_service::quota::check;

/// The user's (settled, reserved) bytes as they are in this transaction.
pub fn usage(tx: &Transaction<'_>, user_id: &str) -> AppResult<(u64, u64)> {
    let (used, reserved): (i64, i64) = tx.query_row(
        "SELECT used_bytes, reserved_bytes FROM users WHERE id = ?1",
        params![user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((used.max(0) as u64, reserved.max(0) as u64))
}

/// Fails with QUOTA_EXCEEDED unless `extra` more bytes fit in the user's limit, counting
/// settled usage and open reservations as they are right now in this transaction.
pub fn ensure_fits(tx: &Transaction<'_>, user: &UserRow, extra: u64) -> AppResult<()> {
    if extra == 0 {
        return Ok(());
    }
    let (used, reserved) = usage(tx, &user.id)?;
    check(used, reserved, extra, user.limit_bytes()).map_err(AppError::from)
}

/// Adds `delta` (may be negative: a refund) to the user's settled usage; `collection` also
/// moves the collection share.
pub fn adjust_used(
    tx: &Transaction<'_>,
    user_id: &str,
    delta: i64,
    collection: bool,
) -> AppResult<()> {
    if delta == 0 {
        return Ok(());
    }
    tx.execute(
        "UPDATE users SET used_bytes = used_bytes + ?2, \
         collection_bytes = collection_bytes + ?3 WHERE id = ?1",
        params![user_id, delta, if collection { delta } else { 0 }],
    )?;
    Ok(())
}

/// Adds `delta` (may be negative: a refund) to the user's settled usage and to its `ctx.kv`
/// share (`/v1/usage` reports it as `kvBytes`).
pub fn adjust_kv(tx: &Transaction<'_>, user_id: &str, delta: i64) -> AppResult<()> {
    if delta == 0 {
        return Ok(());
    }
    tx.execute(
        "UPDATE users SET used_bytes = used_bytes + ?2, kv_bytes = kv_bytes + ?2 WHERE id = ?1",
        params![user_id, delta],
    )?;
    Ok(())
}

/// Records a reservation the rules allowed ([`crate::store::rules::decide_upload`]).
pub fn add_reservation(tx: &Transaction<'_>, user_id: &str, bytes: u64) -> AppResult<()> {
    tx.execute(
        "UPDATE users SET reserved_bytes = reserved_bytes + ?2 WHERE id = ?1",
        params![user_id, bytes as i64],
    )?;
    Ok(())
}

/// Gives back a reservation (upload finished or failed).
pub fn release(tx: &Transaction<'_>, user_id: &str, bytes: u64) -> AppResult<()> {
    tx.execute(
        "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2) WHERE id = ?1",
        params![user_id, bytes as i64],
    )?;
    Ok(())
}
