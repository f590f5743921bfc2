//! `ctx.kv` on D1 (`/v1/kv/{pluginId}[/{key}]`), with the native server's table, SQL and
//! rules (`server/src/store/kv.rs`, `server/src/http/kv.rs`); key, prefix and value rules are
//! core's [`monodit_core::kv`]. Entries are scoped per user (from the token) and plugin id.
//!
//! A value counts toward the quota as its compact JSON bytes. A write reads the entry's
//! stored size and the user's usage, checks that the growth fits, and writes one guarded
//! batch whose guard re-checks both (the entry's size unchanged, the growth still fitting),
//! so a check and the write it allowed never interleave with another write.

use crate::args;
use crate::db::{self, Db};
use crate::http;
use crate::users::User;
use monodit_core::kv::{self, KvEntry, KvList};
use monodit_core::manifest::is_valid_widget_id;
use monodit_core::Error;
use serde::Deserialize;
use serde_json::Value;

/// Checks a plugin id against core's widget id grammar; INVALID_ARGUMENT otherwise.
pub fn check_plugin_id(plugin_id: &str) -> Result<(), Error> {
    if is_valid_widget_id(plugin_id) {
        Ok(())
    } else {
        Err(Error::invalid(
            "a plugin id matches ^[a-z0-9][a-z0-9._-]{0,63}$",
        ))
    }
}

/// Checks a key (core's [`kv::validate_key`]), answering for the empty key the way the
/// native server does (no route matches `/v1/kv/{pluginId}/`).
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(
            "a kv key is 1 to 512 bytes; this one is empty",
        ));
    }
    kv::validate_key(key)
}

#[derive(Deserialize)]
struct Row {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct Size {
    size: i64,
}

fn decode(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| db::internal("stored kv value", e))
}

/// `GET /v1/kv/{pluginId}/{key}`: the entry, or NOT_FOUND when unset.
pub async fn get(db: &Db, user_id: &str, plugin_id: &str, key: &str) -> Result<KvEntry, Error> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    let row: Option<Row> = db
        .first(
            "SELECT key, value FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
            args![user_id, plugin_id, key],
        )
        .await?;
    match row.and_then(|r| r.value) {
        Some(text) => Ok(KvEntry {
            key: key.to_string(),
            value: decode(&text)?,
        }),
        None => Err(http::not_found(format!("no kv entry {key:?}"))),
    }
}

/// `GET /v1/kv/{pluginId}?prefix=&after=`: entries whose key starts with `prefix` (a key
/// range, never `LIKE`), after `after`, in key order; at most [`kv::MAX_LIST`] entries and
/// [`kv::MAX_LIST_BYTES`] of values (the first always), `hasMore` when more match.
pub async fn list(
    db: &Db,
    user_id: &str,
    plugin_id: &str,
    prefix: &str,
    after: &str,
) -> Result<KvList, Error> {
    check_plugin_id(plugin_id)?;
    kv::validate_prefix(prefix)?;
    kv::validate_prefix(after)?;
    // The byte budget is applied in SQL (a running sum of sizes): rows past it come back
    // without their value, so a page never brings more than the budget into wasm memory
    // (an isolate has 128 MB; 1001 values of 256 KiB would not fit).
    let (max, budget) = (kv::MAX_LIST as i64, kv::MAX_LIST_BYTES as i64);
    let page = |range: &str| {
        format!(
            "SELECT key, CASE WHEN n = 1 OR (run <= ?{b} AND n <= ?{m}) THEN value END AS value \
             FROM (SELECT key, value, size, ROW_NUMBER() OVER w AS n, SUM(size) OVER w AS run \
               FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND {range} \
               WINDOW w AS (ORDER BY key ROWS UNBOUNDED PRECEDING) ORDER BY key LIMIT ?{m} + 1) \
             ORDER BY key",
            b = 6,
            m = 7
        )
    };
    let rows: Vec<Row> = match kv::prefix_end(prefix) {
        Some(end) => {
            db.all(
                &page("key >= ?3 AND key > ?4 AND key < ?5"),
                args![user_id, plugin_id, prefix, after, end, budget, max],
            )
            .await?
        }
        None => {
            db.all(
                &page("key >= ?3 AND key > ?4 AND ?5 IS NULL"),
                args![
                    user_id,
                    plugin_id,
                    prefix,
                    after,
                    Option::<String>::None,
                    budget,
                    max
                ],
            )
            .await?
        }
    };
    let mut entries = Vec::new();
    let mut has_more = false;
    for row in rows {
        match row.value {
            Some(text) if entries.len() < kv::MAX_LIST => entries.push(KvEntry {
                key: row.key,
                value: decode(&text)?,
            }),
            _ => {
                has_more = true;
                break;
            }
        }
    }
    Ok(KvList { entries, has_more })
}

/// The entry's stored size, if it exists.
async fn stored_size(
    db: &Db,
    user_id: &str,
    plugin_id: &str,
    key: &str,
) -> Result<Option<i64>, Error> {
    let row: Option<Size> = db
        .first(
            "SELECT size FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
            args![user_id, plugin_id, key],
        )
        .await?;
    Ok(row.map(|r| r.size))
}

/// The guard's condition that the entry's size is still `old` (-1: absent).
const SAME_SIZE: &str =
    "COALESCE((SELECT size FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 \
     AND key = ?3), -1) = ?4";

/// `PUT /v1/kv/{pluginId}/{key}`: stores `value` and answers it. Only the growth over the
/// previous value must fit the quota (QUOTA_EXCEEDED, nothing written); a smaller value
/// refunds the difference.
pub async fn put(
    db: &Db,
    user: &User,
    plugin_id: &str,
    key: &str,
    value: Value,
    now_ms: i64,
) -> Result<KvEntry, Error> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    kv::value_size(&value)?;
    let text =
        serde_json::to_string(&value).map_err(|e| Error::invalid(format!("kv value: {e}")))?;
    let new = text.len() as i64;
    for _ in 0..db::MAX_ATTEMPTS {
        let old = stored_size(db, &user.id, plugin_id, key).await?;
        let delta = new - old.unwrap_or(0);
        if delta > 0 {
            let (used, reserved) = crate::users::usage_of(db, &user.id).await?;
            monodit_service::quota::check(used, reserved, delta as u64, user.limit_bytes())?;
        }
        let batch = vec![
            db::guard(
                db,
                &format!(
                    "{SAME_SIZE} AND (?5 <= 0 OR (SELECT used_bytes + reserved_bytes + ?5 \
                     FROM users WHERE id = ?6) <= ?7)"
                ),
                args![
                    &user.id,
                    plugin_id,
                    key,
                    old.unwrap_or(-1),
                    delta,
                    &user.id,
                    user.limit_bytes()
                ],
            )?,
            db.stmt(
                "INSERT INTO plugin_kv (user_id, plugin_id, key, value, size, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (user_id, plugin_id, key) DO UPDATE SET value = excluded.value, \
                   size = excluded.size, updated_at = excluded.updated_at",
                args![&user.id, plugin_id, key, &text, new, now_ms],
            )?,
            db.stmt(
                "UPDATE users SET used_bytes = used_bytes + ?2, kv_bytes = kv_bytes + ?2 WHERE id = ?1",
                args![&user.id, delta],
            )?,
        ];
        if db.guarded_batch(batch).await? {
            return Ok(KvEntry {
                key: key.to_string(),
                value,
            });
        }
    }
    Err(db::contended())
}

/// `DELETE /v1/kv/{pluginId}/{key}`: whether an entry was removed; its bytes are refunded.
pub async fn delete(db: &Db, user: &User, plugin_id: &str, key: &str) -> Result<bool, Error> {
    check_plugin_id(plugin_id)?;
    check_key(key)?;
    for _ in 0..db::MAX_ATTEMPTS {
        let Some(old) = stored_size(db, &user.id, plugin_id, key).await? else {
            return Ok(false);
        };
        let batch = vec![
            db::guard(db, SAME_SIZE, args![&user.id, plugin_id, key, old])?,
            db.stmt(
                "DELETE FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2 AND key = ?3",
                args![&user.id, plugin_id, key],
            )?,
            db.stmt(
                "UPDATE users SET used_bytes = used_bytes - ?2, kv_bytes = kv_bytes - ?2 WHERE id = ?1",
                args![&user.id, old],
            )?,
        ];
        if db.guarded_batch(batch).await? {
            return Ok(true);
        }
    }
    Err(db::contended())
}
