//! r2-assets on D1 + R2: single-shot uploads streamed into R2 (the request body is piped
//! through the runtime's `FixedLengthStream` straight into `put`, never copied into wasm
//! memory), listing with signed URLs and deletion (the signed download: `downloads.rs`).
//! Same SQL and rules as the native `store/assets.rs` and `http/assets.rs`.
//!
//! The quota reservation is one conditional statement,
//! `UPDATE users SET reserved_bytes = reserved_bytes + n WHERE … AND used + reserved + n <=
//! limit RETURNING …`, so concurrent uploads can never reserve past the limit.

use crate::args;
use crate::db::{self, Db};
use crate::env::WorkerEnv;
use crate::http::{self, Answer};
use crate::users::User;
use monodit_core::api::{AssetInfo, AssetList, Contract};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use monodit_service::assets as rules_assets;
use monodit_service::rules::{self, QuotaFacts};
use monodit_service::signing::{url_expiry, Signer};
use monodit_service::uploads::{replay_key, KnownKey};
use monodit_service::{validate, Clock, Secret, Secrets};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use worker::Request;

/// Largest single upload (the native default; Workers' own request cap applies first).
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// How long a signed download URL lives (rounded up to the hour, as natively).
pub const URL_TTL_SECS: u64 = 24 * 3600;

/// An asset row (`assets`), as stored.
#[derive(Deserialize, Clone)]
pub struct AssetRow {
    /// Object key (32 hex digits).
    pub object_key: String,
    /// Sanitised file name.
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// Normalised content type.
    pub content_type: String,
    /// Epoch ms.
    pub uploaded_at: i64,
}

/// The wire form of a row with its signed URL under `base` (the Worker's own origin).
pub fn info(env: &WorkerEnv, base: &str, r: AssetRow) -> AssetInfo {
    let exp = url_expiry(env.now_secs(), URL_TTL_SECS);
    let sig = Signer::new(env.secret(Secret::Url).to_vec()).sign(&r.object_key, exp);
    AssetInfo {
        url: format!(
            "{base}{}?exp={exp}&sig={sig}",
            monodit_core::routes::object(&r.object_key)
        ),
        url_expires_at: Some(i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX)),
        object_key: r.object_key,
        name: r.name,
        size: r.size.max(0) as u64,
        content_type: r.content_type,
        uploaded_at: r.uploaded_at,
    }
}

/// The request's origin (`https://host`), the base of signed URLs.
pub fn origin(req: &Request) -> Result<String, Error> {
    let url = req.url().map_err(http::runtime)?;
    Ok(url.origin().ascii_serialization())
}

#[derive(Deserialize)]
struct KeyRow {
    done: i64,
    object_key: String,
    name: String,
    size: i64,
    content_type: String,
    uploaded_at: i64,
}

#[derive(Deserialize)]
struct ContractRow {
    schema_id: String,
    schema_version: u32,
}

#[derive(Deserialize)]
struct UsageRow {
    used_bytes: i64,
    reserved_bytes: i64,
}

/// The `Idempotency-Key` header, checked.
fn idempotency_key(req: &Request) -> Result<Option<String>, Error> {
    let Some(key) = http::header(req, "idempotency-key") else {
        return Ok(None);
    };
    if key.contains(',') {
        return Err(Error::invalid("send one Idempotency-Key"));
    }
    validate::idempotency_key(&key)?;
    Ok(Some(key))
}

/// `POST /v1/assets/{bucketId}?name=&schemaId=&schemaVersion=`.
pub async fn upload(
    req: &mut Request,
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user: &User,
    bucket_id: &str,
) -> Answer {
    validate::bucket_id(bucket_id)?;
    let schema_id = http::query_param(req, "schemaId")?
        .ok_or_else(|| Error::invalid("bad query string: missing field `schemaId`"))?;
    let schema_version: u32 = http::query_param(req, "schemaVersion")?
        .ok_or_else(|| Error::invalid("bad query string: missing field `schemaVersion`"))?
        .parse()
        .map_err(|_| Error::invalid("bad query string: schemaVersion must be an integer"))?;
    validate::schema_id(&schema_id)?;
    validate::schema_version(schema_version)?;
    let idem = idempotency_key(req)?;
    let declared: u64 = http::header(req, "content-length")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::invalid("Content-Length is required for uploads"))?;
    let content_type = http::header(req, "content-type")
        .map(|v| rules_assets::normalize_content_type(&v))
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let name = rules_assets::sanitize_name(&http::query_param(req, "name")?.unwrap_or_default());
    let contract = Contract {
        backend: Backend::R2Assets,
        schema_id,
        schema_version,
    };
    let key = rules_assets::new_object_key(env);
    let base = origin(req)?;
    let now = env.now_ms() as i64;

    // 1. Idempotency replay, then the rule (size, contract, quota), then the reservation.
    if let Some(k) = &idem {
        let known: Option<KeyRow> = db
            .first(
                "SELECT done, object_key, name, size, content_type, uploaded_at \
                 FROM asset_upload_keys WHERE user_id = ?1 AND idem_key = ?2",
                args![&user.id, k],
            )
            .await?;
        let known = match known {
            Some(r) if r.done != 0 => KnownKey::Done(AssetRow {
                object_key: r.object_key,
                name: r.name,
                size: r.size,
                content_type: r.content_type,
                uploaded_at: r.uploaded_at,
            }),
            Some(_) => KnownKey::InProgress,
            None => KnownKey::Unknown,
        };
        if let Some(row) = replay_key(known)? {
            // Read the repeated body to its end first, as natively.
            http::discard_body(req).await;
            return http::json(&info(env, &base, row));
        }
    }
    reserve(db, user, bucket_id, &contract, declared).await?;
    // 2. Record the pending object (and the key, in progress) before a byte is stored; if
    //    that fails, the reservation goes back at once.
    let recorded = async {
        let mut batch = Vec::new();
        if let Some(k) = &idem {
            batch.push(db::guard(
                db,
                "NOT EXISTS (SELECT 1 FROM asset_upload_keys WHERE user_id = ?1 AND idem_key = ?2)",
                args![&user.id, k],
            )?);
            batch.push(db.stmt(
                "INSERT INTO asset_upload_keys (user_id, idem_key, object_key, done, bucket_id, name, \
                 size, content_type, uploaded_at, created_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, 0, ?6, 0, ?7)",
                args![&user.id, k, &key, bucket_id, &name, &content_type, now],
            )?);
        }
        batch.push(db.stmt(
            "INSERT INTO pending_objects (object_key, user_id, upload_id, created_at, reserved) \
             VALUES (?1, ?2, NULL, ?3, ?4)",
            args![&key, &user.id, now, declared],
        )?);
        db.guarded_batch(batch).await
    }
    .await;
    if !matches!(recorded, Ok(true)) {
        release(db, &user.id, declared).await?;
        recorded?;
        // The guard refused: another request with this key got there first.
        return Err(Error::new(
            ErrorCode::Conflict,
            "an upload with this Idempotency-Key is still in progress; retry later",
        ));
    }
    // 3. Stream, then settle; on any failure give everything back.
    let stored = match put_stream(req, objects, &key, declared, &content_type).await {
        Ok(()) => {
            settle(
                db,
                env,
                user,
                bucket_id,
                &contract,
                declared,
                &key,
                &name,
                &content_type,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(row) => http::json(&info(env, &base, row)),
        Err(e) => {
            abandon(db, &user.id, declared, &key, now).await;
            if objects.delete(&key).await.is_ok() {
                let _ = db
                    .run(
                        "DELETE FROM doomed_objects WHERE object_key = ?1",
                        args![&key],
                    )
                    .await;
            }
            Err(e)
        }
    }
}

/// Reserves `declared` bytes with one conditional UPDATE; when it matches no row, the rule
/// explains why (QUOTA_EXCEEDED with its detail, INCOMPATIBLE_BUCKET, PAYLOAD_TOO_LARGE), or
/// the facts moved and it is tried again.
async fn reserve(
    db: &Db,
    user: &User,
    bucket_id: &str,
    contract: &Contract,
    declared: u64,
) -> Result<(), Error> {
    for _ in 0..db::MAX_ATTEMPTS {
        let (existing, facts) = quota_facts(db, user, bucket_id).await?;
        rules::decide_upload(
            bucket_id,
            contract,
            existing.as_ref(),
            declared,
            MAX_UPLOAD_BYTES,
            facts,
        )?;
        let granted: Option<UsageRow> = db
            .first(
                "UPDATE users SET reserved_bytes = reserved_bytes + ?2 \
                 WHERE id = ?1 AND used_bytes + reserved_bytes + ?2 <= ?3 \
                 RETURNING used_bytes, reserved_bytes",
                args![&user.id, declared, user.limit_bytes()],
            )
            .await?;
        if granted.is_some() {
            return Ok(());
        }
    }
    Err(db::contended())
}

/// The facts of an upload decision: the r2-assets bucket's contract, if it exists, and the
/// caller's usage against its limit.
pub(crate) async fn quota_facts(
    db: &Db,
    user: &User,
    bucket_id: &str,
) -> Result<(Option<Contract>, QuotaFacts), Error> {
    let existing: Option<ContractRow> = db
        .first(
            "SELECT schema_id, schema_version FROM buckets \
             WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2",
            args![&user.id, bucket_id],
        )
        .await?;
    let usage: UsageRow = db
        .first(
            "SELECT used_bytes, reserved_bytes FROM users WHERE id = ?1",
            args![&user.id],
        )
        .await?
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown user"))?;
    let existing = existing.map(|c| Contract {
        backend: Backend::R2Assets,
        schema_id: c.schema_id,
        schema_version: c.schema_version,
    });
    Ok((
        existing,
        QuotaFacts {
            used: usage.used_bytes.max(0) as u64,
            reserved: usage.reserved_bytes.max(0) as u64,
            limit: user.limit_bytes(),
        },
    ))
}

async fn release(db: &Db, user_id: &str, bytes: u64) -> Result<(), Error> {
    db.run(
        "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2) WHERE id = ?1",
        args![user_id, bytes],
    )
    .await
}

/// Pipes the request body through `new FixedLengthStream(declared)` into R2: the runtime
/// moves the bytes, R2 learns the length it needs, and a body longer or shorter than
/// `Content-Length` fails the put.
async fn put_stream(
    req: &mut Request,
    objects: &worker::Bucket,
    key: &str,
    declared: u64,
    content_type: &str,
) -> Result<(), Error> {
    let data = fixed_length_body(req, declared)?;
    let meta = worker::HttpMetadata {
        content_type: Some(content_type.to_string()),
        ..Default::default()
    };
    objects
        .put(key, data)
        .http_metadata(meta)
        .execute()
        .await
        .map_err(|e| {
            let m = e.to_string();
            if m.contains("length") {
                Error::invalid("the body's length is not its Content-Length")
            } else {
                Error::invalid(format!("upload interrupted: {m}"))
            }
        })?;
    Ok(())
}

/// The request body as a stream of exactly `declared` bytes for R2 (`put`, `uploadPart`):
/// piped through the runtime's `FixedLengthStream`, so R2 learns the length it needs, the
/// bytes never enter wasm memory, and a body of another length fails the write.
pub(crate) fn fixed_length_body(req: &Request, declared: u64) -> Result<worker::Data, Error> {
    Ok(match req.inner().body() {
        None if declared == 0 => worker::Data::Empty,
        None => return Err(Error::invalid("body shorter than Content-Length")),
        Some(body) => {
            let global = js_sys::global();
            let ctor = js_sys::Reflect::get(&global, &JsValue::from_str("FixedLengthStream"))
                .ok()
                .and_then(|c| c.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| db::internal("upload", "FixedLengthStream is missing"))?;
            let fixed = js_sys::Reflect::construct(
                &ctor,
                &js_sys::Array::of1(&JsValue::from_f64(declared as f64)),
            )
            .map_err(|e| db::internal("upload", format!("{e:?}")))?;
            let pipe = js_sys::Reflect::get(&body, &JsValue::from_str("pipeThrough"))
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| db::internal("upload", "ReadableStream.pipeThrough is missing"))?;
            let piped = pipe
                .call1(&body, &fixed)
                .map_err(|e| db::internal("upload", format!("{e:?}")))?;
            worker::Data::ReadableStream(piped.unchecked_into())
        }
    })
}

/// After a stored object: one guarded batch ends the pending record, releases the
/// reservation, creates the bucket if needed (its version continuing after a deletion),
/// records the asset, moves the bucket's counters and usage, completes the idempotency key.
/// The guard: the pending record is still there and the bucket has no other contract.
#[allow(clippy::too_many_arguments)]
async fn settle(
    db: &Db,
    env: &WorkerEnv,
    user: &User,
    bucket_id: &str,
    contract: &Contract,
    declared: u64,
    key: &str,
    name: &str,
    content_type: &str,
) -> Result<AssetRow, Error> {
    let uid = &user.id;
    let now = env.now_ms() as i64;
    let (sid, sv) = (contract.schema_id.as_str(), contract.schema_version);
    let row = AssetRow {
        object_key: key.to_string(),
        name: name.to_string(),
        size: declared as i64,
        content_type: content_type.to_string(),
        uploaded_at: now,
    };
    let mut batch = vec![db::guard(
        db,
        "EXISTS (SELECT 1 FROM pending_objects WHERE object_key = ?1) \
         AND NOT EXISTS (SELECT 1 FROM buckets WHERE user_id = ?2 AND backend = 'r2-assets' \
           AND bucket_id = ?3 AND (schema_id != ?4 OR schema_version != ?5))",
        args![key, uid, bucket_id, sid, sv],
    )?];
    batch.extend(settle_statements(db, uid, bucket_id, contract, &row)?);
    batch.push(db.stmt(
        "UPDATE asset_upload_keys SET done = 1, size = ?3, uploaded_at = ?4 \
         WHERE user_id = ?1 AND object_key = ?2 AND done = 0",
        args![uid, key, declared, now],
    )?);
    if !db.guarded_batch(batch).await? {
        return Err(Error::new(
            ErrorCode::IncompatibleBucket,
            "the bucket was recreated with another contract while this upload streamed",
        ));
    }
    Ok(row)
}

/// The statements that settle a stored object as `row` of `bucket_id` (after the caller's
/// guard): end its pending record, turn the reservation into usage, create the bucket if
/// needed (its version continuing after a deletion), record the asset, move the bucket's
/// bytes and change counter. Shared by single-shot and resumable uploads.
pub(crate) fn settle_statements(
    db: &Db,
    uid: &str,
    bucket_id: &str,
    contract: &Contract,
    row: &AssetRow,
) -> Result<Vec<worker::d1::D1PreparedStatement>, Error> {
    let (sid, sv) = (contract.schema_id.as_str(), contract.schema_version);
    let (key, size, now) = (&row.object_key, row.size, row.uploaded_at);
    Ok(vec![
        db.stmt("DELETE FROM pending_objects WHERE object_key = ?1", args![key])?,
        db.stmt(
            "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2), used_bytes = used_bytes + ?2 WHERE id = ?1",
            args![uid, size],
        )?,
        db.stmt(
            "INSERT INTO buckets (user_id, backend, bucket_id, schema_id, schema_version, bytes, version, created_at) \
             SELECT ?1, 'r2-assets', ?2, ?3, ?4, 0, COALESCE((SELECT last_version FROM bucket_tombstones \
               WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2), 0), ?5 \
             WHERE NOT EXISTS (SELECT 1 FROM buckets WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2)",
            args![uid, bucket_id, sid, sv, now],
        )?,
        db.stmt(
            "INSERT INTO assets (object_key, user_id, bucket_id, name, size, content_type, uploaded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![key, uid, bucket_id, &row.name, size, &row.content_type, now],
        )?,
        db.stmt(
            "UPDATE buckets SET bytes = bytes + ?3, version = version + 1 \
             WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2",
            args![uid, bucket_id, size],
        )?,
    ])
}

/// After a failed upload: releases the reservation, turns the pending record into a deletion
/// record and frees the idempotency key. Failures are logged (the record stays for a sweep).
async fn abandon(db: &Db, user_id: &str, declared: u64, key: &str, now: i64) {
    // Guarded by the pending record: when the sweep already ended this write as abandoned
    // (it streamed past the upload TTL, `sweep.rs`), its bytes were given back there.
    let batch =
        (|| {
            Ok::<_, Error>(vec![
            db::guard(
                db,
                "EXISTS (SELECT 1 FROM pending_objects WHERE object_key = ?1)",
                args![key],
            )?,
            db.stmt(
                "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2) WHERE id = ?1",
                args![user_id, declared],
            )?,
            db.stmt("DELETE FROM pending_objects WHERE object_key = ?1", args![key])?,
            db.stmt(
                "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) VALUES (?1, ?2)",
                args![key, now],
            )?,
            db.stmt(
                "DELETE FROM asset_upload_keys WHERE user_id = ?1 AND object_key = ?2 AND done = 0",
                args![user_id, key],
            )?,
        ])
        })();
    let done = match batch {
        Ok(b) => db.guarded_batch(b).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        worker::console_error!("could not release an upload reservation: {}", e.message);
    }
}

/// `GET /v1/assets/{bucketId}`: oldest first, with the bucket's change counter (0 when it
/// does not exist), one snapshot.
pub async fn list(
    db: &Db,
    env: &WorkerEnv,
    base: &str,
    user_id: &str,
    bucket_id: &str,
) -> Result<AssetList, Error> {
    validate::bucket_id(bucket_id)?;
    let results = db
        .0
        .batch(vec![
            db.stmt(
                "SELECT version FROM buckets WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2",
                args![user_id, bucket_id],
            )?,
            db.stmt(
                "SELECT object_key, name, size, content_type, uploaded_at FROM assets \
                 WHERE user_id = ?1 AND bucket_id = ?2 ORDER BY uploaded_at, object_key",
                args![user_id, bucket_id],
            )?,
        ])
        .await
        .map_err(|e| db::internal("database read", e))?;
    #[derive(Deserialize)]
    struct V {
        version: i64,
    }
    let (Some(v), Some(rows)) = (results.first(), results.get(1)) else {
        return Err(db::internal("database read", "a batch lost a result"));
    };
    let version = v
        .results::<V>()
        .map_err(|e| db::internal("database row", e))?
        .first()
        .map(|v| v.version.max(0) as u64)
        .unwrap_or(0);
    let rows: Vec<AssetRow> = rows
        .results()
        .map_err(|e| db::internal("database row", e))?;
    Ok(AssetList {
        bucket_id: bucket_id.to_string(),
        version,
        assets: rows.into_iter().map(|r| info(env, base, r)).collect(),
    })
}

/// `DELETE /v1/assets/{bucketId}/{objectKey}`: row, refund and change counter in one guarded
/// batch (the row must still be there), then the object.
pub async fn delete(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user_id: &str,
    bucket_id: &str,
    key: &str,
) -> Result<(), Error> {
    validate::bucket_id(bucket_id)?;
    let not_found = || {
        Error::new(
            ErrorCode::NotFound,
            format!("no asset {key:?} in bucket {bucket_id:?}"),
        )
    };
    if !rules_assets::is_object_key(key) {
        return Err(not_found());
    }
    #[derive(Deserialize)]
    struct S {
        size: i64,
    }
    let row: S = db
        .first(
            "SELECT size FROM assets WHERE object_key = ?1 AND user_id = ?2 AND bucket_id = ?3",
            args![key, user_id, bucket_id],
        )
        .await?
        .ok_or_else(not_found)?;
    let size = row.size.max(0);
    let now = env.now_ms() as i64;
    let batch = vec![
        db::guard(
            db,
            "EXISTS (SELECT 1 FROM assets WHERE object_key = ?1 AND user_id = ?2 AND bucket_id = ?3)",
            args![key, user_id, bucket_id],
        )?,
        db.stmt("DELETE FROM assets WHERE object_key = ?1", args![key])?,
        db.stmt(
            "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) VALUES (?1, ?2)",
            args![key, now],
        )?,
        db.stmt(
            "UPDATE buckets SET bytes = MAX(0, bytes - ?3), version = version + 1 \
             WHERE user_id = ?1 AND backend = 'r2-assets' AND bucket_id = ?2",
            args![user_id, bucket_id, size],
        )?,
        db.stmt(
            "UPDATE users SET used_bytes = used_bytes - ?2 WHERE id = ?1",
            args![user_id, size],
        )?,
    ];
    if !db.guarded_batch(batch).await? {
        return Err(not_found());
    }
    match objects.delete(key).await {
        Ok(()) => {
            db.run(
                "DELETE FROM doomed_objects WHERE object_key = ?1",
                args![key],
            )
            .await?
        }
        Err(e) => worker::console_error!("R2 delete of {key}: {e}"),
    }
    Ok(())
}
