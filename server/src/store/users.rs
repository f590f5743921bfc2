//! Users, plans and bearer tokens. Tokens are random and stored only as SHA-256 hashes.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use base64::Engine;
use monodit_core::api::{BucketUsage, Me, NewUser, Plan, Usage};
use monodit_core::buckets::Backend;
use monodit_core::ErrorCode;
use rand::RngCore;
use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

/// An authenticated user as the rules need it.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Opaque id.
    pub id: String,
    /// Plan.
    pub plan: Plan,
    /// 5 GB add-ons.
    pub addons: u32,
    /// Dev/test override of the plan's limit.
    pub limit_override: Option<u64>,
}

impl UserRow {
    /// The storage limit in bytes: the plan's, unless a dev override is set.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_override
            .unwrap_or_else(|| self.plan.limit_bytes(self.addons))
    }

    /// Fails with PLAN_REQUIRED when the plan gates storage off (Free).
    pub fn require_storage(&self) -> AppResult<()> {
        if self.plan.storage_enabled() {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::PlanRequired,
                "storage needs the Pro plan",
            ))
        }
    }
}

/// Hex SHA-256 of a token: what the database keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random bearer token (256 bits, URL-safe).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "mdt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub(crate) fn plan_str(plan: Plan) -> &'static str {
    match plan {
        Plan::Free => "free",
        Plan::Pro => "pro",
    }
}

fn parse_plan(s: &str) -> Plan {
    match s {
        "pro" => Plan::Pro,
        _ => Plan::Free,
    }
}

/// Creates a user with a fresh token (or the given one, for the dev demo user).
pub fn create(
    tx: &Transaction<'_>,
    plan: Plan,
    addons: u32,
    token: Option<String>,
) -> AppResult<NewUser> {
    let token = token.unwrap_or_else(new_token);
    let user_id = format!("u_{}", uuid::Uuid::new_v4().simple());
    tx.execute(
        "INSERT INTO users (id, token_hash, plan, addons, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            user_id,
            hash_token(&token),
            plan_str(plan),
            addons,
            now_ms()
        ],
    )?;
    Ok(NewUser { user_id, token })
}

/// Finds the user that owns `token`, or creates one with exactly that token (dev demo user,
/// so the demo page can use a well-known token across restarts).
pub fn ensure_with_token(tx: &Transaction<'_>, token: &str, plan: Plan) -> AppResult<NewUser> {
    if let Some(u) = by_token(tx, token)? {
        return Ok(NewUser {
            user_id: u.id,
            token: token.to_string(),
        });
    }
    create(tx, plan, 0, Some(token.to_string()))
}

/// The user owning `token`, if any.
pub fn by_token(tx: &Transaction<'_>, token: &str) -> AppResult<Option<UserRow>> {
    by_token_hash(tx, &hash_token(token))
}

/// The user whose token hashes to `token_hash`, if any.
pub fn by_token_hash(tx: &Transaction<'_>, token_hash: &str) -> AppResult<Option<UserRow>> {
    Ok(tx
        .query_row(
            "SELECT id, plan, addons, limit_override FROM users WHERE token_hash = ?1",
            params![token_hash],
            |r| {
                Ok(UserRow {
                    id: r.get(0)?,
                    plan: parse_plan(&r.get::<_, String>(1)?),
                    addons: r.get(2)?,
                    limit_override: r.get::<_, Option<i64>>(3)?.map(|n| n.max(0) as u64),
                })
            },
        )
        .optional()?)
}

/// Changes a user's plan (dev route and CLI); `limit_override` replaces the plan's limit
/// (dev and tests only; `None` restores the plan's).
pub fn set_plan(
    tx: &Transaction<'_>,
    user_id: &str,
    plan: Plan,
    addons: u32,
    limit_override: Option<u64>,
) -> AppResult<()> {
    let limit = limit_override.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    tx.execute(
        "UPDATE users SET plan = ?2, addons = ?3, limit_override = ?4 WHERE id = ?1",
        params![user_id, plan_str(plan), addons, limit],
    )?;
    Ok(())
}

/// `GET /v1/me`.
pub fn me(tx: &Transaction<'_>, user_id: &str) -> AppResult<Me> {
    let me = tx
        .query_row(
            "SELECT plan, addons, used_bytes, limit_override FROM users WHERE id = ?1",
            params![user_id],
            |r| {
                let plan = parse_plan(&r.get::<_, String>(0)?);
                let addons: u32 = r.get(1)?;
                Ok(Me {
                    user_id: user_id.to_string(),
                    plan,
                    addons,
                    used_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    limit_bytes: r
                        .get::<_, Option<i64>>(3)?
                        .map(|n| n.max(0) as u64)
                        .unwrap_or_else(|| plan.limit_bytes(addons)),
                })
            },
        )
        .optional()?;
    me.ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "unknown user"))
}

/// `GET /v1/usage`.
pub fn usage(tx: &Transaction<'_>, user_id: &str) -> AppResult<Usage> {
    let me = me(tx, user_id)?;
    let (collection_bytes, kv_bytes): (i64, i64) = tx.query_row(
        "SELECT collection_bytes, kv_bytes FROM users WHERE id = ?1",
        params![user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stmt = tx.prepare(
        "SELECT backend, bucket_id, bytes FROM buckets WHERE user_id = ?1 ORDER BY backend, bucket_id",
    )?;
    let buckets = stmt
        .query_map(params![user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(backend, bucket_id, bytes)| {
            Some(BucketUsage {
                backend: parse_backend(&backend)?,
                bucket_id,
                bytes: bytes.max(0) as u64,
            })
        })
        .collect();
    Ok(Usage {
        plan: me.plan,
        used_bytes: me.used_bytes,
        limit_bytes: me.limit_bytes,
        collection_bytes: collection_bytes.max(0) as u64,
        kv_bytes: kv_bytes.max(0) as u64,
        buckets,
    })
}

/// Parses the stored spelling of a backend.
pub fn parse_backend(s: &str) -> Option<Backend> {
    match s {
        "d1-json" => Some(Backend::D1Json),
        "r2-assets" => Some(Backend::R2Assets),
        _ => None,
    }
}
