//! `/v1/documents/*` and `POST /v1/meta`.

use crate::error::{AppError, AppResult};
use crate::http::extract::{JsonBody, PathParams, QueryParams, Storage};
use crate::store::documents;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use monodit_core::api::{BatchMetaRequest, BatchMetaResponse, DocumentMeta, PutDocument};
use monodit_core::ErrorCode;
use std::sync::Arc;

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Parses one entity tag (`"7"`, `W/"7"` or `7`) into a version.
fn parse_tag(tag: &str) -> Option<u64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t);
    t.parse().ok()
}

/// Whether `If-None-Match` names the current version (or `*`).
fn none_match_hits(headers: &HeaderMap, version: u64) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || parse_tag(t) == Some(version))
}

/// Query of `GET /v1/documents/{bucketId}`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct GetDocumentQuery {
    /// `empty`: a bucket never written answers 204 (no body) instead of 404 NOT_FOUND, so a
    /// browser client reading a new bucket does not log a failed request.
    #[serde(default)]
    pub missing: Option<String>,
}

/// `GET /v1/documents/{bucketId}`: the document with `ETag`; 304 when `If-None-Match` matches.
pub async fn get_document(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(bucket_id): PathParams<String>,
    QueryParams(q): QueryParams<GetDocumentQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if q.missing.as_deref().is_some_and(|m| m != "empty") {
        return Err(AppError::invalid("missing must be \"empty\" when given"));
    }
    let found = st
        .db
        .read(move |tx| documents::get(tx, &user.id, &bucket_id))
        .await;
    let doc = match found {
        Err(e) if e.code() == ErrorCode::NotFound && q.missing.as_deref() == Some("empty") => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        other => other?,
    };
    let tag = etag(doc.meta.version);
    if none_match_hits(&headers, doc.meta.version) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok(([(header::ETAG, tag)], Json(doc)).into_response())
}

/// `GET /v1/documents/{bucketId}/meta`.
pub async fn get_meta(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(bucket_id): PathParams<String>,
) -> AppResult<Response> {
    let meta = st
        .db
        .read(move |tx| documents::meta(tx, &user.id, &bucket_id))
        .await?;
    Ok(([(header::ETAG, etag(meta.version))], Json(meta)).into_response())
}

/// `PUT /v1/documents/{bucketId}` with optional `If-Match`.
pub async fn put_document(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(bucket_id): PathParams<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PutDocument>,
) -> AppResult<Response> {
    let if_match =
        match headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => Some(v.to_str().ok().and_then(parse_tag).ok_or_else(|| {
                AppError::invalid("If-Match must be a version tag such as \"3\"")
            })?),
        };
    if st.take_fault(&user.id) {
        return Err(AppError::new(
            ErrorCode::Internal,
            "internal error (injected by PUT /v1/dev/faults)",
        ));
    }
    let user_id = user.id.clone();
    let meta: DocumentMeta = st
        .db
        .write(move |tx| documents::put(tx, &user, &bucket_id, body, if_match))
        .await?;
    if st.take_document_fault(&user_id) {
        // Stored, but the client never hears so (dev fault `documentResponseLost`).
        return Ok(crate::http::assets::lost_answer());
    }
    Ok(([(header::ETAG, etag(meta.version))], Json(meta)).into_response())
}

/// `POST /v1/meta`.
pub async fn batch_meta(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    JsonBody(body): JsonBody<BatchMetaRequest>,
) -> AppResult<Json<BatchMetaResponse>> {
    Ok(Json(
        st.db
            .read(move |tx| documents::batch_meta(tx, &user.id, body))
            .await?,
    ))
}
