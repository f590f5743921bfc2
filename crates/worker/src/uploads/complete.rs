//! `POST /v1/uploads/{uploadId}/complete`: R2 joins the session's parts, and the object
//! settles as an asset in one guarded batch (natively `begin_complete`, `finish_complete` in
//! `server/src/store/uploads.rs`).

use super::{get, Session, SessionRow, NOT_COMPLETING};
use crate::args;
use crate::assets::{self, AssetRow};
use crate::db::{self, Db};
use crate::env::WorkerEnv;
use crate::users::User;
use monodit_core::{Error, ErrorCode};
use monodit_service::assets as rules_assets;
use monodit_service::uploads as service;
use monodit_service::Clock;

/// `POST /v1/uploads/{uploadId}/complete`: the asset (again, if already completed). Every
/// part must be stored (CONFLICT with `detail.missing`) and one completion runs at a time.
pub async fn complete(
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    user: &User,
    upload_id: &str,
) -> Result<AssetRow, Error> {
    let session = get(db, env, &user.id, upload_id).await?;
    if let Some(done) = session.row.completed() {
        return Ok(done);
    }
    let stored: Vec<u32> = session
        .parts
        .iter()
        .map(|p| p.part_number.max(0) as u32)
        .collect();
    service::check_complete(session.row.size(), session.row.part_size(), &stored)?;
    let key = match &session.row.store_key {
        Some(k) => k.clone(),
        None if session.row.size() == 0 => rules_assets::new_object_key(env),
        None => {
            return Err(db::internal(
                "complete",
                "the session has no multipart upload",
            ))
        }
    };
    let now = env.now_ms() as i64;
    let begun = db
        .guarded_batch(vec![
            db::guard(
                db,
                &format!(
                    "EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1 AND state = 'open') \
                     AND {NOT_COMPLETING}"
                ),
                args![upload_id],
            )?,
            db.stmt(
                "INSERT INTO pending_objects (object_key, user_id, upload_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                args![&key, &user.id, upload_id, now],
            )?,
            db.stmt(
                "UPDATE uploads SET touched_at = ?2 WHERE upload_id = ?1",
                args![upload_id, now],
            )?,
        ])
        .await?;
    if !begun {
        let again = get(db, env, &user.id, upload_id).await?;
        if let Some(done) = again.row.completed() {
            return Ok(done);
        }
        return Err(Error::new(
            ErrorCode::Conflict,
            "this upload is being completed; retry later",
        ));
    }
    let outcome = async {
        assemble(objects, &session, &key).await?;
        finish(db, env, user, &session.row, &key).await
    }
    .await;
    if outcome.is_err() {
        // The session stays open for another try; its object (if R2 made it) stays too,
        // named by upload_multipart, and the next completion settles it.
        if let Err(e) = db
            .run(
                "DELETE FROM pending_objects WHERE object_key = ?1",
                args![&key],
            )
            .await
        {
            worker::console_error!("could not end a failed completion: {e}");
        }
    }
    outcome
}

/// Has R2 join the parts into `key` (or store the empty file). An object already there with
/// the session's size is a join an earlier, failed completion made: kept as it is.
async fn assemble(objects: &worker::Bucket, session: &Session, key: &str) -> Result<(), Error> {
    let size = session.row.size();
    if size == 0 {
        let meta = worker::HttpMetadata {
            content_type: Some(session.row.content_type.clone()),
            ..Default::default()
        };
        objects
            .put(key, Vec::<u8>::new())
            .http_metadata(meta)
            .execute()
            .await
            .map_err(|e| db::internal("R2 put", e))?;
        return Ok(());
    }
    let head = objects
        .head(key)
        .await
        .map_err(|e| db::internal("R2 head", e))?;
    if head.is_some_and(|o| o.size() == size) {
        return Ok(());
    }
    let Some(multipart_id) = &session.row.multipart_id else {
        return Err(db::internal(
            "complete",
            "the session has no multipart upload",
        ));
    };
    let mut parts = Vec::with_capacity(session.parts.len());
    let mut missing = Vec::new();
    for p in &session.parts {
        match (&p.etag, u16::try_from(p.part_number)) {
            (Some(etag), Ok(n)) => parts.push(worker::UploadedPart::new(n, etag.clone())),
            _ => missing.push(p.part_number),
        }
    }
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("{} parts must be sent again", missing.len()),
        )
        .with_detail(serde_json::json!({ "missing": missing })));
    }
    objects
        .resume_multipart_upload(key, multipart_id)
        .map_err(|e| db::internal("R2 multipart resume", e))?
        .complete(parts)
        .await
        .map_err(|e| db::internal("R2 multipart complete", e))?;
    Ok(())
}

/// Settles the joined object as an asset and marks the session done, in one guarded batch
/// (the session is still open and completing, the bucket has no other contract).
async fn finish(
    db: &Db,
    env: &WorkerEnv,
    user: &User,
    row: &SessionRow,
    key: &str,
) -> Result<AssetRow, Error> {
    let contract = service::session_contract(&row.schema_id, row.schema_version());
    let asset = AssetRow {
        object_key: key.to_string(),
        name: row.name.clone(),
        size: row.size,
        content_type: row.content_type.clone(),
        uploaded_at: env.now_ms() as i64,
    };
    let id = &row.upload_id;
    let mut batch = vec![db::guard(
        db,
        "EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1 AND state = 'open') \
         AND EXISTS (SELECT 1 FROM pending_objects WHERE object_key = ?2 AND upload_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM buckets WHERE user_id = ?3 AND backend = 'r2-assets' \
           AND bucket_id = ?4 AND (schema_id != ?5 OR schema_version != ?6))",
        args![
            id,
            key,
            &user.id,
            &row.bucket_id,
            &contract.schema_id,
            contract.schema_version
        ],
    )?];
    batch.extend(assets::settle_statements(
        db,
        &user.id,
        &row.bucket_id,
        &contract,
        &asset,
    )?);
    batch.extend([
        db.stmt(
            "UPDATE uploads SET state = 'done', object_key = ?2, uploaded_at = ?3, touched_at = ?3 \
             WHERE upload_id = ?1",
            args![id, key, asset.uploaded_at],
        )?,
        db.stmt("DELETE FROM upload_parts WHERE upload_id = ?1", args![id])?,
        db.stmt("DELETE FROM upload_part_etags WHERE upload_id = ?1", args![id])?,
        db.stmt("DELETE FROM upload_multipart WHERE upload_id = ?1", args![id])?,
    ]);
    if !db.guarded_batch(batch).await? {
        return Err(Error::new(
            ErrorCode::IncompatibleBucket,
            "the bucket was recreated with another contract while this upload completed",
        ));
    }
    Ok(asset)
}
