//! `/v1/uploads/*`: resumable uploads. A session reserves its whole size, parts stream to
//! staging files on disk (never held in memory), and completion streams them, in order, into
//! one object that settles as an asset exactly like a single-shot upload.

use crate::error::{AppError, AppResult};
use crate::http::assets::{answer_or_lose, body_stream, delete_objects, info, stream_to_store};
use crate::http::extract::{JsonBody, PathParams, Storage};
use crate::objects;
use crate::store::assets::{self as assets_store, AssetRow};
use crate::store::uploads::{self as store, Completion, Session};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{StreamExt, TryStreamExt};
use monodit_core::api::{upload_part_len, NewUpload, UploadPart, UploadSession};
use monodit_core::ErrorCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

fn session_json(st: &AppState, s: Session) -> UploadSession {
    UploadSession {
        upload_id: s.row.upload_id,
        bucket_id: s.row.bucket_id,
        size: s.row.size,
        part_size: s.row.part_size,
        parts: s.parts,
        expires_at: s.row.touched_at.saturating_add(st.upload_ttl_ms()),
        completed: s.row.completed.map(|row| info(st, row)),
    }
}

/// `POST /v1/uploads`: a new session, or the one this `idempotencyKey` already names.
pub async fn create(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    JsonBody(req): JsonBody<NewUpload>,
) -> AppResult<Json<UploadSession>> {
    let name = assets_store::sanitize_name(&req.name);
    let content_type = objects::normalize_content_type(&req.content_type);
    let (max, ttl) = (st.max_upload_bytes, st.upload_ttl_ms());
    let (session, expired) = st
        .db
        .write(move |tx| store::create(tx, &user, &req, &name, &content_type, max, ttl))
        .await?;
    for id in expired {
        st.staging.remove_upload(&id).await;
    }
    Ok(Json(session_json(&st, session)))
}

/// `GET /v1/uploads/{uploadId}`.
pub async fn get(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(upload_id): PathParams<String>,
) -> AppResult<Json<UploadSession>> {
    let ttl = st.upload_ttl_ms();
    let session = st
        .db
        .read(move |tx| store::get(tx, &user.id, &upload_id, ttl))
        .await?;
    Ok(Json(session_json(&st, session)))
}

/// [`write_part`], answering NOT_FOUND rather than a file error when the session went away
/// meanwhile (aborted or expired: its directory is gone).
async fn store_part(
    st: Arc<AppState>,
    user_id: String,
    upload_id: String,
    part: UploadPart,
    body: Body,
) -> AppResult<()> {
    let outcome = write_part(st.clone(), user_id.clone(), upload_id.clone(), part, body).await;
    if matches!(&outcome, Err(e) if e.code() == ErrorCode::Internal) {
        let ttl = st.upload_ttl_ms();
        st.db
            .read(move |tx| store::get(tx, &user_id, &upload_id, ttl))
            .await?;
    }
    outcome
}

/// Streams one part into its staging file: a temporary file, flushed to disk, then renamed
/// over the part, then recorded. Runs as its own task so a client hanging up cannot stop it
/// between the rename and the row.
async fn write_part(
    st: Arc<AppState>,
    user_id: String,
    upload_id: String,
    part: UploadPart,
    body: Body,
) -> AppResult<()> {
    let write = st.staging.begin(&upload_id, part.part_number);
    let io = |e: std::io::Error| AppError::internal("staging a part", e);
    tokio::fs::create_dir_all(st.staging.upload_dir(&upload_id))
        .await
        .map_err(io)?;
    let mut file = tokio::fs::File::create(&write.tmp).await.map_err(io)?;
    let mut stream = body_stream(body);
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        if total > part.size {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                "body longer than the part",
            ));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    if total != part.size {
        return Err(AppError::invalid("body shorter than Content-Length"));
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    tokio::fs::rename(&write.tmp, &write.part)
        .await
        .map_err(io)?;
    let ttl = st.upload_ttl_ms();
    let recorded = {
        let upload_id = upload_id.clone();
        st.db
            .write(move |tx| store::record_part(tx, &user_id, &upload_id, part, ttl))
            .await
    };
    if recorded.is_err() {
        // The session is gone or completed: the file is garbage (the sweep would take it).
        let _ = tokio::fs::remove_file(&write.part).await;
    }
    drop(write);
    recorded
}

/// `PUT /v1/uploads/{uploadId}/parts/{partNumber}`: raw bytes, `Content-Length` exactly the
/// part's size. Putting a part again replaces it.
pub async fn put_part(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((upload_id, part_number)): PathParams<(String, u32)>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let ttl = st.upload_ttl_ms();
    let expected = {
        let (u, id) = (user.id.clone(), upload_id.clone());
        st.db
            .read(move |tx| store::part_len(tx, &u, &id, part_number, ttl))
            .await?
    };
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    if declared != Some(expected) {
        return Err(AppError::invalid(format!(
            "part {part_number} is {expected} bytes: send Content-Length: {expected}"
        )));
    }
    let part = UploadPart {
        part_number,
        size: expected,
    };
    let user_id = user.id.clone();
    tokio::spawn(store_part(st.clone(), user.id, upload_id, part, body))
        .await
        .map_err(|e| AppError::internal("part task", e))??;
    Ok(answer_or_lose(&st, &user_id, Json(part).into_response()))
}

/// The staged parts, in order, as one byte stream.
fn parts_stream(files: Vec<PathBuf>) -> impl futures::Stream<Item = AppResult<bytes::Bytes>> {
    futures::stream::iter(files)
        .then(|path| async move {
            tokio::fs::File::open(path)
                .await
                .map(|f| tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024))
        })
        .try_flatten()
        .map_err(|e| AppError::internal("reading staged parts", e))
}

/// Assembles and settles a completion `begin_complete` allowed; on failure its pending
/// record and object go (the session stays open for another try).
async fn assemble(
    st: Arc<AppState>,
    user: crate::store::users::UserRow,
    session: Session,
    key: String,
) -> AppResult<AssetRow> {
    let upload_id = session.row.upload_id.clone();
    let (size, part_size) = (session.row.size, session.row.part_size);
    // A part whose file is missing or short (lost staging) is reported missing, not stored.
    let mut files = Vec::new();
    let mut lost = Vec::new();
    for p in &session.parts {
        let path = st.staging.part_path(&upload_id, p.part_number);
        let len = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
        if len.is_some() && len == upload_part_len(size, part_size, p.part_number) {
            files.push(path);
        } else {
            lost.push(p.part_number);
        }
    }
    let outcome: AppResult<AssetRow> = async {
        if !lost.is_empty() {
            let (id, l) = (upload_id.clone(), lost.clone());
            st.db
                .write(move |tx| {
                    for n in l {
                        store::drop_part(tx, &id, n)?;
                    }
                    Ok(())
                })
                .await?;
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("{} parts must be sent again", lost.len()),
            )
            .with_detail(json!({ "missing": lost })));
        }
        let stored = stream_to_store(&st, &key, Box::pin(parts_stream(files)), size).await?;
        let row = AssetRow {
            object_key: key.clone(),
            name: session.row.name.clone(),
            size: stored,
            content_type: session.row.content_type.clone(),
            uploaded_at: assets_store::uploaded_now(),
        };
        let (u, id, r) = (user.clone(), upload_id.clone(), row.clone());
        st.db
            .write(move |tx| store::finish_complete(tx, &u, &id, &r))
            .await?;
        Ok(row)
    }
    .await;
    match &outcome {
        Ok(_) => st.staging.remove_upload(&upload_id).await,
        Err(_) => {
            let k = key.clone();
            if let Err(e) = st.db.write(move |tx| store::abandon_complete(tx, &k)).await {
                tracing::error!(%e, "could not end a failed completion");
            }
            delete_objects(&st, std::slice::from_ref(&key)).await;
        }
    }
    outcome
}

/// `POST /v1/uploads/{uploadId}/complete`: the asset (again, if already completed).
pub async fn complete(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(upload_id): PathParams<String>,
) -> AppResult<Response> {
    let ttl = st.upload_ttl_ms();
    let key = assets_store::new_object_key();
    let step = {
        let (u, id, k) = (user.id.clone(), upload_id.clone(), key.clone());
        st.db
            .write(move |tx| store::begin_complete(tx, &u, &id, &k, ttl))
            .await?
    };
    let row = match step {
        Completion::Done(row) => row,
        Completion::Assemble(session) => {
            tokio::spawn(assemble(st.clone(), user.clone(), session, key))
                .await
                .map_err(|e| AppError::internal("completion task", e))??
        }
    };
    Ok(answer_or_lose(
        &st,
        &user.id,
        Json(info(&st, row)).into_response(),
    ))
}

/// `DELETE /v1/uploads/{uploadId}`: staging removed, reservation released.
pub async fn abort(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(upload_id): PathParams<String>,
) -> AppResult<Json<Value>> {
    let ttl = st.upload_ttl_ms();
    let id = upload_id.clone();
    st.db
        .write(move |tx| store::abort(tx, &user.id, &id, ttl))
        .await?;
    st.staging.remove_upload(&upload_id).await;
    Ok(Json(json!({"deleted": true})))
}
