//! Users, plans and bearer tokens on D1 (the native `store/users.rs`, same table and rules):
//! tokens are random and stored only as SHA-256 hashes. No cache: isolates share no memory,
//! so every request reads the user's current plan.

use crate::args;
use crate::db::Db;
use monodit_core::api::{BucketUsage, DevFaults, Me, NewUser, Plan, SetPlan, Usage};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use monodit_service::{Clock, Random};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// An authenticated user as the rules need it.
#[derive(Debug, Clone)]
pub struct User {
    /// Opaque id.
    pub id: String,
    /// Plan.
    pub plan: Plan,
    /// 5 GB add-ons.
    pub addons: u32,
    /// Dev/test override of the plan's limit.
    pub limit_override: Option<u64>,
}

impl User {
    /// The storage limit in bytes: the plan's, unless a dev override is set.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_override
            .unwrap_or_else(|| self.plan.limit_bytes(self.addons))
    }

    /// Fails with PLAN_REQUIRED when the plan gates storage off (Free).
    pub fn require_storage(&self) -> Result<(), Error> {
        if self.plan.storage_enabled() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::PlanRequired,
                "storage needs the Pro plan",
            ))
        }
    }
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    plan: String,
    addons: i64,
    limit_override: Option<i64>,
    used_bytes: i64,
    reserved_bytes: i64,
    collection_bytes: i64,
    kv_bytes: i64,
}

const USER_COLUMNS: &str = "id, plan, addons, limit_override, used_bytes, reserved_bytes, \
                            collection_bytes, kv_bytes";

fn parse_plan(s: &str) -> Plan {
    match s {
        "pro" => Plan::Pro,
        _ => Plan::Free,
    }
}

fn plan_str(plan: Plan) -> &'static str {
    match plan {
        Plan::Free => "free",
        Plan::Pro => "pro",
    }
}

fn nonneg(n: i64) -> u64 {
    n.max(0) as u64
}

impl UserRow {
    fn user(&self) -> User {
        User {
            id: self.id.clone(),
            plan: parse_plan(&self.plan),
            addons: u32::try_from(self.addons.max(0)).unwrap_or(u32::MAX),
            limit_override: self.limit_override.map(nonneg),
        }
    }
}

/// Hex SHA-256 of a token: what the database keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The user owning `token` (UNAUTHENTICATED when none does).
pub async fn authenticate(db: &Db, token: &str) -> Result<User, Error> {
    let row: Option<UserRow> = db
        .first(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE token_hash = ?1"),
            args![hash_token(token)],
        )
        .await?;
    row.map(|r| r.user())
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown token"))
}

async fn row(db: &Db, user_id: &str) -> Result<UserRow, Error> {
    db.first(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        args![user_id],
    )
    .await?
    .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown user"))
}

/// `POST /v1/dev/users`: a fresh user with a random token (256 bits, URL-safe).
pub async fn create(
    db: &Db,
    env: &(impl Clock + Random),
    body: &SetPlan,
) -> Result<NewUser, Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    env.fill_random(&mut bytes);
    let token = format!(
        "mdt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let user_id = format!("u_{}", env.random_hex(16));
    db.run(
        "INSERT INTO users (id, token_hash, plan, addons, created_at, limit_override) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            &user_id,
            hash_token(&token),
            plan_str(body.plan),
            body.addons,
            env.now_ms(),
            body.limit_bytes
        ],
    )
    .await?;
    Ok(NewUser { user_id, token })
}

/// `PUT /v1/dev/plan`: changes the caller's plan; `limitBytes` replaces the plan's limit.
pub async fn set_plan(db: &Db, user_id: &str, body: &SetPlan) -> Result<Me, Error> {
    db.run(
        "UPDATE users SET plan = ?2, addons = ?3, limit_override = ?4 WHERE id = ?1",
        args![user_id, plan_str(body.plan), body.addons, body.limit_bytes],
    )
    .await?;
    me(db, user_id).await
}

fn me_of(r: &UserRow) -> Me {
    let user = r.user();
    Me {
        user_id: r.id.clone(),
        plan: user.plan,
        addons: user.addons,
        used_bytes: nonneg(r.used_bytes),
        limit_bytes: user.limit_bytes(),
    }
}

/// `GET /v1/me`.
pub async fn me(db: &Db, user_id: &str) -> Result<Me, Error> {
    Ok(me_of(&row(db, user_id).await?))
}

/// `GET /v1/usage`: core's [`Usage`] plus `reservedBytes` (bytes open upload reservations
/// hold), as natively.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageAnswer {
    /// Settled usage, limit and per-bucket bytes.
    #[serde(flatten)]
    pub usage: Usage,
    /// Bytes reserved by uploads in flight.
    pub reserved_bytes: u64,
}

#[derive(Deserialize)]
struct BucketBytes {
    backend: String,
    bucket_id: String,
    bytes: i64,
}

/// Parses the stored spelling of a backend.
pub fn parse_backend(s: &str) -> Option<Backend> {
    match s {
        "d1-json" => Some(Backend::D1Json),
        "r2-assets" => Some(Backend::R2Assets),
        _ => None,
    }
}

/// `GET /v1/usage`: the user row and its buckets, read in one batch (one snapshot).
pub async fn usage(db: &Db, user_id: &str) -> Result<UsageAnswer, Error> {
    let results =
        db.0.batch(vec![
            db.stmt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                args![user_id],
            )?,
            db.stmt(
                "SELECT backend, bucket_id, bytes FROM buckets WHERE user_id = ?1 \
                 ORDER BY backend, bucket_id",
                args![user_id],
            )?,
        ])
        .await
        .map_err(|e| crate::db::internal("database read", e))?;
    let mut results = results.into_iter();
    let (Some(users), Some(buckets)) = (results.next(), results.next()) else {
        return Err(crate::db::internal(
            "database read",
            "a batch lost a result",
        ));
    };
    let user: UserRow = users
        .results()
        .map_err(|e| crate::db::internal("database row", e))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown user"))?;
    let buckets: Vec<BucketBytes> = buckets
        .results()
        .map_err(|e| crate::db::internal("database row", e))?;
    let me = me_of(&user);
    Ok(UsageAnswer {
        usage: Usage {
            plan: me.plan,
            used_bytes: me.used_bytes,
            limit_bytes: me.limit_bytes,
            collection_bytes: nonneg(user.collection_bytes),
            kv_bytes: nonneg(user.kv_bytes),
            buckets: buckets
                .into_iter()
                .filter_map(|b| {
                    Some(BucketUsage {
                        backend: parse_backend(&b.backend)?,
                        bucket_id: b.bucket_id,
                        bytes: nonneg(b.bytes),
                    })
                })
                .collect(),
        },
        reserved_bytes: nonneg(user.reserved_bytes),
    })
}

/// The user's (settled, reserved) bytes as they are now.
pub async fn usage_of(db: &Db, user_id: &str) -> Result<(u64, u64), Error> {
    #[derive(Deserialize)]
    struct Usage {
        used_bytes: i64,
        reserved_bytes: i64,
    }
    let u: Usage = db
        .first(
            "SELECT used_bytes, reserved_bytes FROM users WHERE id = ?1",
            args![user_id],
        )
        .await?
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown user"))?;
    Ok((u.used_bytes.max(0) as u64, u.reserved_bytes.max(0) as u64))
}

/// `PUT /v1/dev/faults`: replaces the caller's three counters (all 0: the row goes).
pub async fn set_faults(db: &Db, user_id: &str, body: &DevFaults) -> Result<DevFaults, Error> {
    if body == &DevFaults::default() {
        db.run("DELETE FROM dev_faults WHERE user_id = ?1", args![user_id])
            .await?;
    } else {
        db.run(
            "INSERT INTO dev_faults (user_id, document_put_errors, upload_response_lost, \
             document_response_lost) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id) DO UPDATE SET document_put_errors = excluded.document_put_errors, \
             upload_response_lost = excluded.upload_response_lost, \
             document_response_lost = excluded.document_response_lost",
            args![
                user_id,
                body.document_put_errors,
                body.upload_response_lost,
                body.document_response_lost
            ],
        )
        .await?;
    }
    Ok(body.clone())
}

/// A dev fault counted in `dev_faults` (migrations 0003 and 0005).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `documentPutErrors`: the next document write answers 500 without writing.
    DocumentPutError,
    /// `uploadResponseLost`: the next upload request's answer is lost.
    UploadResponseLost,
    /// `documentResponseLost`: the next stored document write's answer is lost.
    DocumentResponseLost,
}

impl Fault {
    fn column(self) -> &'static str {
        match self {
            Fault::DocumentPutError => "document_put_errors",
            Fault::UploadResponseLost => "upload_response_lost",
            Fault::DocumentResponseLost => "document_response_lost",
        }
    }
}

/// Whether the caller's next request of this kind is an injected fault (and counts it down),
/// in one conditional statement. Callers ask only in dev mode.
pub async fn take_fault(db: &Db, user_id: &str, fault: Fault) -> Result<bool, Error> {
    let column = fault.column();
    let left: Option<serde_json::Value> = db
        .first(
            &format!(
                "UPDATE dev_faults SET {column} = {column} - 1 \
                 WHERE user_id = ?1 AND {column} > 0 RETURNING {column}"
            ),
            args![user_id],
        )
        .await?;
    Ok(left.is_some())
}
