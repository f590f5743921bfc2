//! Plugin key-value storage, `ctx.kv` (seed 003: settings under `settings:`, internal state
//! under `state:`). Wire types, limits and key rules are core's ([`monodit_core::kv`]).
//!
//! Entries are scoped like collection items: per user (from the token, never from input) and
//! plugin id. A plugin id must match core's widget id grammar, the one collections' plugin ids
//! obey (manifests are validated with it and the query planner checks it); unlike a
//! collection, KV needs no manifest declaration (seed 003 offers `ctx.kv` to every plugin), so
//! there is no per-plugin registration to look up. Values count toward the quota like
//! collection items: their compact JSON bytes, charged inside the writer's transaction
//! (growth checked and charged, shrink refunded), so a check and the write it guards never
//! interleave with another write.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::{quota, users::UserRow};
use monodit_core::kv::{self, KvEntry, KvList};
use monodit_core::manifest::is_valid_widget_id;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

/// Checks a plugin id against core's widget id grammar (`^[a-z0-9][a-z0-9._-]{0,63}$`);
/// INVALID_ARGUMENT otherwise.
pub fn check_plugin_id(plugin_id: &str) -> AppResult<()> {
    if is_valid_widget_id(plugin_id) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "a plugin id matches ^[a-z0-9][a-z0-9._-]{0,63}$",
        ))
    }
}

/// Checks a key (core's [`kv::validate_key`]; INVALID_ARGUMENT).
pub fn check_key(key: &str) -> AppResult<()> {
    kv::validate_key(key).map_err(AppError::from)
}

/// Validates and encodes a value as stored (compact JSON); PAYLOAD_TOO_LARGE above
/// [`kv::MAX_VALUE_BYTES`]. Runs before the write transaction, so encoding never holds the
/// writer.
pub fn encode_value(value: &Value) -> AppResult<String> {
    kv::value_size(value)?;
    Ok(serde_json::to_string(value)?)
}

/// The stored size of an entry, if it exists.
fn stored_size(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    key: &str,
) -> AppResult<Option<i64>> {
    Ok(tx
        .prepare_cached(
            "SELECT size FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
        )?
        .query_row(params![user_id, plugin_id, key], |r| r.get(0))
        .optional()?)
}

/// `GET /v1/kv/{pluginId}/{key}`: the entry, or NOT_FOUND when unset.
pub fn get(tx: &Transaction<'_>, user_id: &str, plugin_id: &str, key: &str) -> AppResult<KvEntry> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    let text: Option<String> = tx
        .prepare_cached(
            "SELECT value FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
        )?
        .query_row(params![user_id, plugin_id, key], |r| r.get(0))
        .optional()?;
    match text {
        Some(t) => Ok(KvEntry {
            key: key.to_string(),
            value: serde_json::from_str(&t)?,
        }),
        None => Err(AppError::not_found(format!("no kv entry {key:?}"))),
    }
}

/// `GET /v1/kv/{pluginId}?prefix=`: entries whose key starts with `prefix`, in key order
/// (UTF-8 bytes, i.e. code points), at most [`kv::MAX_LIST`] of them and values of at most
/// [`kv::MAX_LIST_BYTES`] in all; `hasMore` when more match.
///
/// The prefix is a key range (`prefix <= key < kv::prefix_end(prefix)`), never `LIKE`, so
/// `%` and `_` are plain characters and the primary key's index serves the range.
pub fn list(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    prefix: &str,
    after: &str,
) -> AppResult<KvList> {
    check_plugin_id(plugin_id)?;
    kv::validate_prefix(prefix)?;
    // `after` pages on (keyset): keys are never empty, so "" excludes nothing.
    kv::validate_prefix(after)?;
    let end = kv::prefix_end(prefix);
    // One row past the limit says whether more match without counting them all.
    let limit = (kv::MAX_LIST + 1) as i64;
    // Two statements rather than `(?4 IS NULL OR key < ?4)`, which would keep SQLite from
    // using the upper bound in the index range.
    let mut stmt;
    let mut rows = match &end {
        Some(end) => {
            stmt = tx.prepare_cached(
                "SELECT key, value, size FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 \
                 AND key >= ?3 AND key < ?4 AND key > ?6 ORDER BY key LIMIT ?5",
            )?;
            stmt.query(params![user_id, plugin_id, prefix, end, limit, after])?
        }
        None => {
            stmt = tx.prepare_cached(
                "SELECT key, value, size FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 \
                 AND key >= ?3 AND key > ?5 ORDER BY key LIMIT ?4",
            )?;
            stmt.query(params![user_id, plugin_id, prefix, limit, after])?
        }
    };
    let (mut entries, mut bytes, mut has_more) = (Vec::new(), 0usize, false);
    while let Some(row) = rows.next()? {
        let size = usize::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
        let full = entries.len() >= kv::MAX_LIST
            || (!entries.is_empty() && bytes.saturating_add(size) > kv::MAX_LIST_BYTES);
        if full {
            has_more = true;
            break;
        }
        let text: String = row.get(1)?;
        entries.push(KvEntry {
            key: row.get(0)?,
            value: serde_json::from_str(&text)?,
        });
        bytes = bytes.saturating_add(size);
    }
    Ok(KvList { entries, has_more })
}

/// `PUT /v1/kv/{pluginId}/{key}`: stores `text` (from [`encode_value`]) and answers the stored
/// entry. Only the growth over the previous value must fit the quota (QUOTA_EXCEEDED, nothing
/// written); a smaller value refunds the difference.
pub fn put(
    tx: &Transaction<'_>,
    user: &UserRow,
    plugin_id: &str,
    key: &str,
    value: Value,
    text: &str,
) -> AppResult<KvEntry> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    let old = stored_size(tx, &user.id, plugin_id, key)?.unwrap_or(0);
    let new = text.len() as i64;
    let delta = new - old;
    if delta > 0 {
        quota::ensure_fits(tx, user, delta as u64)?;
    }
    tx.prepare_cached(
        "INSERT INTO plugin_kv (user_id, plugin_id, key, value, size, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (user_id, plugin_id, key) DO UPDATE SET value = excluded.value, \
           size = excluded.size, updated_at = excluded.updated_at",
    )?
    .execute(params![user.id, plugin_id, key, text, new, now_ms()])?;
    quota::adjust_kv(tx, &user.id, delta)?;
    Ok(KvEntry {
        key: key.to_string(),
        value,
    })
}

/// `DELETE /v1/kv/{pluginId}/{key}`: whether an entry was removed; its bytes are refunded.
pub fn delete(tx: &Transaction<'_>, user: &UserRow, plugin_id: &str, key: &str) -> AppResult<bool> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    let Some(old) = stored_size(tx, &user.id, plugin_id, key)? else {
        return Ok(false);
    };
    tx.execute(
        "DELETE FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
        params![user.id, plugin_id, key],
    )?;
    quota::adjust_kv(tx, &user.id, -old)?;
    Ok(true)
}
