//! `/v1/uploads/*`: resumable uploads on D1 + R2 multipart, with the native server's rules
//! and tables (`server/src/store/uploads.rs`, `server/src/http/uploads.rs`).
//!
//! A session reserves its whole size when it is created and makes its R2 multipart upload
//! (object key and R2 upload id in `upload_multipart`, migration 0004). Each part streams
//! from the request straight into `uploadPart` (never into wasm memory) and is recorded with
//! its etag; completion asks R2 to join the parts and settles the object as an asset, like a
//! single-shot upload. Every decision reads its facts, runs the service layer's rule and
//! writes one guarded batch (`db.rs`): a batch whose facts changed rolls back whole.
//!
//! Where natively a failed completion deletes its object and keeps the staged parts, R2 has
//! consumed the parts once the object exists; so the object stays (named by
//! `upload_multipart`) and a retried completion settles it. Aborting or expiring a session
//! dooms its object and aborts its multipart upload.

use crate::args;
use crate::assets::{self, AssetRow};
use crate::db::{self, Db};
use crate::env::WorkerEnv;
use crate::http;
use crate::users::User;
use monodit_core::api::{NewUpload, UploadPart, UploadSession, UPLOAD_PART_SIZE};
use monodit_core::{Error, ErrorCode};
use monodit_service::assets as rules_assets;
use monodit_service::rules;
use monodit_service::uploads as service;
use monodit_service::{validate, Clock};
use serde::Deserialize;
use worker::Request;

mod complete;
pub use complete::complete;

/// A session row with its R2 multipart upload (absent for an empty file or once completed).
#[derive(Deserialize, Clone)]
struct SessionRow {
    upload_id: String,
    user_id: String,
    bucket_id: String,
    schema_id: String,
    schema_version: i64,
    name: String,
    content_type: String,
    size: i64,
    part_size: i64,
    state: String,
    object_key: Option<String>,
    uploaded_at: Option<i64>,
    touched_at: i64,
    store_key: Option<String>,
    multipart_id: Option<String>,
}

impl SessionRow {
    fn size(&self) -> u64 {
        self.size.max(0) as u64
    }

    fn part_size(&self) -> u64 {
        self.part_size.max(1) as u64
    }

    fn schema_version(&self) -> u32 {
        u32::try_from(self.schema_version.max(0)).unwrap_or(u32::MAX)
    }

    /// The asset it produced, once done.
    fn completed(&self) -> Option<AssetRow> {
        match (self.state.as_str(), &self.object_key) {
            ("done", Some(key)) => Some(AssetRow {
                object_key: key.clone(),
                name: self.name.clone(),
                size: self.size,
                content_type: self.content_type.clone(),
                uploaded_at: self.uploaded_at.unwrap_or(0),
            }),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct PartRow {
    part_number: i64,
    size: i64,
    etag: Option<String>,
}

/// A session with its stored parts, in order.
struct Session {
    row: SessionRow,
    parts: Vec<PartRow>,
}

impl Session {
    fn wire(&self, env: &WorkerEnv, base: &str) -> UploadSession {
        UploadSession {
            upload_id: self.row.upload_id.clone(),
            bucket_id: self.row.bucket_id.clone(),
            size: self.row.size(),
            part_size: self.row.part_size(),
            parts: self
                .parts
                .iter()
                .map(|p| UploadPart {
                    part_number: p.part_number.max(0) as u32,
                    size: p.size.max(0) as u64,
                })
                .collect(),
            expires_at: self.row.touched_at.saturating_add(env.upload_ttl_ms()),
            completed: self.row.completed().map(|r| assets::info(env, base, r)),
        }
    }
}

const SESSION_SELECT: &str =
    "SELECT u.upload_id, u.user_id, u.bucket_id, u.schema_id, u.schema_version, \
     u.name, u.content_type, u.size, u.part_size, u.state, u.object_key, u.uploaded_at, \
     u.touched_at, m.object_key AS store_key, m.multipart_id \
     FROM uploads u LEFT JOIN upload_multipart m ON m.upload_id = u.upload_id";

/// `NOT EXISTS` a running completion of upload `?1` (its object is pending).
const NOT_COMPLETING: &str = "NOT EXISTS (SELECT 1 FROM pending_objects WHERE upload_id = ?1)";

fn not_found(upload_id: &str) -> Error {
    http::not_found(format!("no upload {upload_id:?}"))
}

/// The caller's session: NOT_FOUND when unknown, another user's, or open and untouched for
/// longer than the upload TTL ([`WorkerEnv::upload_ttl_ms`]; the sweep removes it soon). Row and parts in one snapshot.
async fn get(db: &Db, env: &WorkerEnv, user_id: &str, upload_id: &str) -> Result<Session, Error> {
    if !rules_assets::is_object_key(upload_id) {
        return Err(not_found(upload_id));
    }
    let results =
        db.0.batch(vec![
            db.stmt(
                &format!("{SESSION_SELECT} WHERE u.upload_id = ?1 AND u.user_id = ?2"),
                args![upload_id, user_id],
            )?,
            db.stmt(
                "SELECT p.part_number, p.size, e.etag FROM upload_parts p \
                 LEFT JOIN upload_part_etags e \
                   ON e.upload_id = p.upload_id AND e.part_number = p.part_number \
                 WHERE p.upload_id = ?1 ORDER BY p.part_number",
                args![upload_id],
            )?,
        ])
        .await
        .map_err(|e| db::internal("database read", e))?;
    let (Some(rows), Some(parts)) = (results.first(), results.get(1)) else {
        return Err(db::internal("database read", "a batch lost a result"));
    };
    let row: SessionRow = rows
        .results::<SessionRow>()
        .map_err(|e| db::internal("database row", e))?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(upload_id))?;
    if row.state != "done"
        && row.touched_at.saturating_add(env.upload_ttl_ms()) < env.now_ms() as i64
    {
        return Err(not_found(upload_id));
    }
    let parts = parts
        .results()
        .map_err(|e| db::internal("database row", e))?;
    Ok(Session { row, parts })
}

/// Whether a completion of `upload_id` is running.
async fn completing(db: &Db, upload_id: &str) -> Result<bool, Error> {
    #[derive(Deserialize)]
    struct One {
        #[allow(dead_code)]
        one: i64,
    }
    let hit: Option<One> = db
        .first(
            "SELECT 1 AS one FROM pending_objects WHERE upload_id = ?1",
            args![upload_id],
        )
        .await?;
    Ok(hit.is_some())
}

/// The service layer's open-session rule on a session read just now.
async fn require_open(db: &Db, session: &Session) -> Result<(), Error> {
    let completed = session.row.completed().is_some();
    let running = !completed && completing(db, &session.row.upload_id).await?;
    service::require_open(completed, running)
}

/// `GET /v1/uploads/{uploadId}`.
pub async fn show(
    db: &Db,
    env: &WorkerEnv,
    base: &str,
    user_id: &str,
    upload_id: &str,
) -> Result<UploadSession, Error> {
    Ok(get(db, env, user_id, upload_id).await?.wire(env, base))
}

/// `POST /v1/uploads`: the session this idempotency key already names (completed or not), or
/// a new one after the single-shot checks, reserving `size` in the batch that records it.
/// The caller's expired sessions go first, so their bytes never block a new one.
pub async fn create(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    base: &str,
    user: &User,
    req: NewUpload,
) -> Result<UploadSession, Error> {
    validate::idempotency_key(&req.idempotency_key)?;
    validate::bucket_id(&req.bucket_id)?;
    validate::schema_id(&req.schema_id)?;
    validate::schema_version(req.schema_version)?;
    let name = rules_assets::sanitize_name(&req.name);
    let content_type = rules_assets::normalize_content_type(&req.content_type);
    expire(db, objects, env, Some(&user.id)).await?;
    // Made once the rule allows the session; aborted unless the session records it.
    let mut multipart: Option<(String, String)> = None;
    let outcome = create_session(
        db,
        objects,
        env,
        user,
        &req,
        &name,
        &content_type,
        &mut multipart,
    )
    .await;
    let recorded = matches!(outcome, Ok((_, true)));
    if let (Some((key, id)), false) = (&multipart, recorded) {
        abort_multipart(objects, key, id).await;
    }
    Ok(outcome?.0.wire(env, base))
}

/// The decision loop of [`create`]: `(session, true)` when this call recorded it (with the
/// multipart upload in `multipart`), `false` when it answers the one the key already names.
#[allow(clippy::too_many_arguments)]
async fn create_session(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user: &User,
    req: &NewUpload,
    name: &str,
    content_type: &str,
    multipart: &mut Option<(String, String)>,
) -> Result<(Session, bool), Error> {
    let contract = service::session_contract(&req.schema_id, req.schema_version);
    let upload_id = rules_assets::new_object_key(env);
    for _ in 0..db::MAX_ATTEMPTS {
        #[derive(Deserialize)]
        struct Known {
            upload_id: String,
        }
        let known: Option<Known> = db
            .first(
                "SELECT upload_id FROM uploads WHERE user_id = ?1 AND idem_key = ?2",
                args![&user.id, &req.idempotency_key],
            )
            .await?;
        // Checked before the key, so an oversized request is refused whatever it names.
        service::check_session_size(req.size, assets::MAX_UPLOAD_BYTES)?;
        let asked = service::SessionKey {
            bucket_id: &req.bucket_id,
            size: req.size,
            schema_id: &req.schema_id,
            schema_version: req.schema_version,
        };
        if let Some(k) = known {
            let session = get(db, env, &user.id, &k.upload_id).await?;
            let r = &session.row;
            service::same_session(
                service::SessionKey {
                    bucket_id: &r.bucket_id,
                    size: r.size(),
                    schema_id: &r.schema_id,
                    schema_version: r.schema_version(),
                },
                asked,
            )?;
            return Ok((session, false));
        }
        let facts = assets::quota_facts(db, user, &req.bucket_id).await?;
        rules::decide_upload(
            &req.bucket_id,
            &contract,
            facts.0.as_ref(),
            req.size,
            assets::MAX_UPLOAD_BYTES,
            facts.1,
        )?;
        if multipart.is_none() && req.size > 0 {
            let key = rules_assets::new_object_key(env);
            let meta = worker::HttpMetadata {
                content_type: Some(content_type.to_string()),
                ..Default::default()
            };
            let upload = objects
                .create_multipart_upload(&key)
                .http_metadata(meta)
                .execute()
                .await
                .map_err(|e| db::internal("R2 multipart create", e))?;
            *multipart = Some((key, upload.upload_id().await));
        }
        let now = env.now_ms() as i64;
        let (sid, sv) = (req.schema_id.as_str(), req.schema_version);
        let mut batch = vec![
            db::guard(
                db,
                "NOT EXISTS (SELECT 1 FROM uploads WHERE user_id = ?1 AND idem_key = ?2) \
                 AND (SELECT used_bytes + reserved_bytes + ?3 FROM users WHERE id = ?1) <= ?4 \
                 AND NOT EXISTS (SELECT 1 FROM buckets WHERE user_id = ?1 AND backend = 'r2-assets' \
                   AND bucket_id = ?5 AND (schema_id != ?6 OR schema_version != ?7))",
                args![
                    &user.id,
                    &req.idempotency_key,
                    req.size,
                    user.limit_bytes(),
                    &req.bucket_id,
                    sid,
                    sv
                ],
            )?,
            db.stmt(
                "UPDATE users SET reserved_bytes = reserved_bytes + ?2 WHERE id = ?1",
                args![&user.id, req.size],
            )?,
            db.stmt(
                "INSERT INTO uploads (upload_id, user_id, idem_key, bucket_id, schema_id, \
                 schema_version, name, content_type, size, part_size, state, touched_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11, ?11)",
                args![
                    &upload_id,
                    &user.id,
                    &req.idempotency_key,
                    &req.bucket_id,
                    sid,
                    sv,
                    name,
                    content_type,
                    req.size,
                    UPLOAD_PART_SIZE,
                    now
                ],
            )?,
        ];
        if let Some((key, id)) = multipart.as_ref() {
            batch.push(db.stmt(
                "INSERT INTO upload_multipart (upload_id, object_key, multipart_id) VALUES (?1, ?2, ?3)",
                args![&upload_id, key, id],
            )?);
        }
        if db.guarded_batch(batch).await? {
            return Ok((get(db, env, &user.id, &upload_id).await?, true));
        }
        // A fact moved (the key was taken, the quota or the bucket changed): decide again.
    }
    Err(db::contended())
}

/// Aborts an R2 multipart upload; a failure is logged (R2 ends stale ones by itself).
async fn abort_multipart(objects: &worker::Bucket, key: &str, multipart_id: &str) {
    let aborted = match objects.resume_multipart_upload(key, multipart_id) {
        Ok(upload) => upload.abort().await,
        Err(e) => Err(e),
    };
    if let Err(e) = aborted {
        worker::console_error!("R2 multipart abort of {key}: {e}");
    }
}

/// `PUT /v1/uploads/{uploadId}/parts/{partNumber}`: raw bytes, `Content-Length` exactly the
/// part's size, streamed into the R2 multipart upload. Putting a part again replaces it.
pub async fn put_part(
    req: &Request,
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user_id: &str,
    upload_id: &str,
    part_number: &str,
) -> Result<UploadPart, Error> {
    let part_number: u32 = part_number
        .parse()
        .map_err(|_| Error::invalid("bad path parameter: partNumber must be an integer"))?;
    let session = get(db, env, user_id, upload_id).await?;
    require_open(db, &session).await?;
    let expected = service::part_len(session.row.size(), session.row.part_size(), part_number)?;
    let declared: Option<u64> =
        http::header(req, "content-length").and_then(|v| v.trim().parse().ok());
    if declared != Some(expected) {
        return Err(Error::invalid(format!(
            "part {part_number} is {expected} bytes: send Content-Length: {expected}"
        )));
    }
    let (Some(key), Some(multipart_id)) = (&session.row.store_key, &session.row.multipart_id)
    else {
        return Err(db::internal(
            "upload part",
            "the session has no multipart upload",
        ));
    };
    let n = u16::try_from(part_number)
        .map_err(|_| Error::invalid("part numbers of this upload are too large"))?;
    let upload = objects
        .resume_multipart_upload(key, multipart_id)
        .map_err(|e| db::internal("R2 multipart resume", e))?;
    let body = assets::fixed_length_body(req, expected)?;
    let etag = match upload.upload_part(n, body).await {
        Ok(part) => part.etag(),
        Err(e) => {
            // Aborted or expired meanwhile: the session's own answer, else the failure.
            get(db, env, user_id, upload_id).await?;
            let m = e.to_string();
            return Err(if m.contains("length") {
                Error::invalid("the body's length is not its Content-Length")
            } else {
                Error::invalid(format!("upload interrupted: {m}"))
            });
        }
    };
    let now = env.now_ms() as i64;
    let batch = vec![
        db::guard(
            db,
            &format!(
                "EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1 AND user_id = ?2 \
                 AND state = 'open') AND {NOT_COMPLETING}"
            ),
            args![upload_id, user_id],
        )?,
        db.stmt(
            "INSERT INTO upload_parts (upload_id, part_number, size) VALUES (?1, ?2, ?3) \
             ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size",
            args![upload_id, part_number, expected],
        )?,
        db.stmt(
            "INSERT INTO upload_part_etags (upload_id, part_number, etag) VALUES (?1, ?2, ?3) \
             ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag",
            args![upload_id, part_number, etag],
        )?,
        db.stmt(
            "UPDATE uploads SET touched_at = ?2 WHERE upload_id = ?1",
            args![upload_id, now],
        )?,
    ];
    if !db.guarded_batch(batch).await? {
        // Removed, completed or completing meanwhile: answer as a fresh request would.
        let session = get(db, env, user_id, upload_id).await?;
        require_open(db, &session).await?;
        return Err(db::contended());
    }
    Ok(UploadPart {
        part_number,
        size: expected,
    })
}

/// The statements that remove an open session: its reservation released, its rows gone, its
/// object (if R2 made one) doomed. The caller's guard comes first.
fn remove_statements(
    db: &Db,
    user_id: &str,
    row: &SessionRow,
    now: i64,
) -> Result<Vec<worker::d1::D1PreparedStatement>, Error> {
    let id = &row.upload_id;
    let mut batch = vec![
        db.stmt(
            "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2) WHERE id = ?1",
            args![user_id, row.size()],
        )?,
        db.stmt("DELETE FROM upload_parts WHERE upload_id = ?1", args![id])?,
        db.stmt(
            "DELETE FROM upload_part_etags WHERE upload_id = ?1",
            args![id],
        )?,
        db.stmt(
            "DELETE FROM upload_multipart WHERE upload_id = ?1",
            args![id],
        )?,
        db.stmt("DELETE FROM uploads WHERE upload_id = ?1", args![id])?,
    ];
    if let Some(key) = &row.store_key {
        batch.push(db.stmt(
            "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) VALUES (?1, ?2)",
            args![key, now],
        )?);
    }
    Ok(batch)
}

/// After a removal: the multipart upload aborted, a joined object deleted, its record gone.
async fn discard_store(db: &Db, objects: &worker::Bucket, row: &SessionRow) {
    let (Some(key), Some(id)) = (&row.store_key, &row.multipart_id) else {
        return;
    };
    abort_multipart(objects, key, id).await;
    if objects.delete(key).await.is_ok() {
        if let Err(e) = db
            .run(
                "DELETE FROM doomed_objects WHERE object_key = ?1",
                args![key],
            )
            .await
        {
            worker::console_error!("could not clear a deletion record: {e}");
        }
    }
}

/// `DELETE /v1/uploads/{uploadId}`: an open session is removed and its reservation released;
/// a completed one is CONFLICT (delete the asset instead), and so is one being completed.
pub async fn abort(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user_id: &str,
    upload_id: &str,
) -> Result<(), Error> {
    for _ in 0..db::MAX_ATTEMPTS {
        let session = get(db, env, user_id, upload_id).await?;
        if session.row.completed().is_some() {
            return Err(Error::new(
                ErrorCode::Conflict,
                "this upload is completed: delete its asset instead",
            ));
        }
        if completing(db, upload_id).await? {
            return Err(Error::new(
                ErrorCode::Conflict,
                "this upload is being completed; retry later",
            ));
        }
        let mut batch = vec![db::guard(
            db,
            &format!(
                "EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1 AND state = 'open') \
                 AND {NOT_COMPLETING}"
            ),
            args![upload_id],
        )?];
        batch.extend(remove_statements(
            db,
            user_id,
            &session.row,
            env.now_ms() as i64,
        )?);
        if db.guarded_batch(batch).await? {
            discard_store(db, objects, &session.row).await;
            return Ok(());
        }
    }
    Err(db::contended())
}

/// Removes open sessions untouched for longer than the upload TTL (of one user, or all; at
/// most 100 per call), releasing their reservations; a session being completed is left
/// alone. Returns how many it found and how many it removed.
pub async fn expire(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user_id: Option<&str>,
) -> Result<(usize, usize), Error> {
    let now = env.now_ms() as i64;
    let cutoff = now.saturating_sub(env.upload_ttl_ms());
    let stale: Vec<SessionRow> = db
        .all(
            &format!(
                "{} WHERE u.state = 'open' AND u.touched_at < ?1 AND (?2 IS NULL OR u.user_id = ?2) \
                 AND u.upload_id NOT IN (SELECT upload_id FROM pending_objects WHERE upload_id IS NOT NULL) \
                 LIMIT 100",
                SESSION_SELECT
            ),
            args![cutoff, user_id],
        )
        .await?;
    let (found, mut removed) = (stale.len(), 0);
    for row in stale {
        let mut batch = vec![db::guard(
            db,
            &format!(
                "EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1 AND state = 'open' \
                 AND touched_at < ?2) AND {NOT_COMPLETING}"
            ),
            args![&row.upload_id, cutoff],
        )?];
        batch.extend(remove_statements(db, &row.user_id, &row, now)?);
        if db.guarded_batch(batch).await? {
            discard_store(db, objects, &row).await;
            removed += 1;
        }
    }
    Ok((found, removed))
}
