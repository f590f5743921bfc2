//! `/v1/assets/*` and the signed `/v1/objects/{key}` download.

use crate::error::{AppError, AppResult};
use crate::http::extract::{PathParams, QueryParams, Storage};
use crate::objects::{self, inline_allowed, url_expiry, SignatureError};
use crate::store::assets::{self as store, AssetRow};
use crate::store::validate;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use monodit_core::api::{AssetInfo, AssetList, Contract};
use monodit_core::buckets::Backend;
use monodit_core::ErrorCode;
use monodit_service::Clock;
use object_store::{PutPayload, WriteMultipart};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Uploads up to this size are buffered and stored with one PUT; larger ones stream as a
/// multipart upload so memory stays flat whatever the file size.
const SMALL_UPLOAD: u64 = 1024 * 1024;
/// Multipart part size (S3 and R2 need ≥ 5 MiB for all parts but the last).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// Query of `POST /v1/assets/{bucketId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadQuery {
    /// The file name (metadata only).
    #[serde(default)]
    pub name: Option<String>,
    /// Contract schema id.
    pub schema_id: String,
    /// Contract schema version.
    pub schema_version: u32,
}

/// Query of the signed download URL.
#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub exp: Option<String>,
    /// Hex HMAC.
    #[serde(default)]
    pub sig: Option<String>,
}

/// A signed URL for `key` expiring at `exp` (epoch seconds, from [`url_expiry`]).
pub fn signed_url(st: &AppState, key: &str, exp: u64) -> String {
    format!(
        "{}{}?exp={exp}&sig={}",
        st.public_url,
        monodit_core::routes::object(key),
        st.signer.sign(key, exp)
    )
}

/// The wire form of an asset row, with its signed URL and when it expires. The expiry is
/// rounded up to the hour so repeated listings hand out the same URL (browsers can cache the
/// image) while it still expires.
pub fn info(st: &AppState, row: AssetRow) -> AssetInfo {
    let exp = url_expiry(st.env.now_secs(), st.url_ttl_secs);
    AssetInfo {
        url: signed_url(st, &row.object_key, exp),
        url_expires_at: Some(i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX)),
        object_key: row.object_key,
        name: row.name,
        size: row.size,
        content_type: row.content_type,
        uploaded_at: row.uploaded_at,
    }
}

/// Streams `stream` into the object store as `key`; returns the byte count. Fails if it is
/// not exactly `declared` bytes long. The key must be recorded as pending first
/// ([`store::add_pending`]), or the sweep may take the object.
pub async fn stream_to_store<S>(
    st: &AppState,
    key: &str,
    stream: S,
    declared: u64,
) -> AppResult<u64>
where
    S: futures::Stream<Item = AppResult<bytes::Bytes>> + Unpin,
{
    let path = objects::path_of(key);
    let mut stream = stream;
    let mut total: u64 = 0;
    let too_long = || {
        AppError::new(
            ErrorCode::PayloadTooLarge,
            "body longer than Content-Length",
        )
    };
    if declared <= SMALL_UPLOAD {
        let mut buf = Vec::with_capacity(declared as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            total += chunk.len() as u64;
            if total > declared {
                return Err(too_long());
            }
            buf.extend_from_slice(&chunk);
        }
        if total != declared {
            return Err(AppError::invalid("body shorter than Content-Length"));
        }
        st.objects.put(&path, PutPayload::from(buf)).await?;
        return Ok(total);
    }
    let upload = st.objects.put_multipart(&path).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let outcome: AppResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            total += chunk.len() as u64;
            if total > declared {
                return Err(too_long());
            }
            // Back-pressure: at most two parts in flight, so memory stays bounded.
            writer.wait_for_capacity(2).await?;
            writer.write(&chunk);
        }
        if total != declared {
            return Err(AppError::invalid("body shorter than Content-Length"));
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            writer.finish().await?;
            Ok(total)
        }
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%abort, "could not abort a failed multipart upload");
            }
            Err(e)
        }
    }
}

/// A request body as a stream of coded results.
pub fn body_stream(body: Body) -> impl futures::Stream<Item = AppResult<bytes::Bytes>> + Unpin {
    body.into_data_stream()
        .map(|chunk| chunk.map_err(|e| AppError::invalid(format!("upload interrupted: {e}"))))
}

/// The answer of an upload request, or (dev fault `uploadResponseLost`) none at all: the
/// work is done and committed, then the connection drops before a byte of the answer is
/// written, as when a proxy or the network loses it.
pub fn answer_or_lose(st: &AppState, user_id: &str, answer: Response) -> Response {
    if !st.take_upload_fault(user_id) {
        return answer;
    }
    lost_answer()
}

/// No answer at all (dev faults): the connection drops before a byte of it is written.
pub fn lost_answer() -> Response {
    // A body that fails before its first frame makes hyper close the connection without
    // writing the status line it had only buffered.
    let lost = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other(
            "answer dropped (PUT /v1/dev/faults)",
        ))
    });
    Response::new(Body::from_stream(lost))
}

/// The `Idempotency-Key` header, checked ([`crate::store::uploads::validate_idempotency_key`]).
fn idempotency_key(headers: &HeaderMap) -> AppResult<Option<String>> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::invalid("send one Idempotency-Key"));
    }
    let key = value
        .to_str()
        .map_err(|_| AppError::invalid("Idempotency-Key must be ASCII"))?;
    crate::store::uploads::validate_idempotency_key(key)?;
    Ok(Some(key.to_string()))
}

/// The stored type of an upload: the normalised `Content-Type`, `application/octet-stream`
/// when absent or unparsable ([`objects::normalize_content_type`]).
fn content_type_of(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(objects::normalize_content_type)
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

/// `POST /v1/assets/{bucketId}?name=&schemaId=&schemaVersion=`: raw bytes with
/// `Content-Length` (quota is reserved from it before a byte is stored), `Content-Type` and
/// an optional `Idempotency-Key`: a key that already produced an asset answers that asset
/// again and stores nothing; one whose first request still streams is CONFLICT.
pub async fn upload(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(bucket_id): PathParams<String>,
    QueryParams(q): QueryParams<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    validate::bucket_id(&bucket_id)?;
    validate::schema_id(&q.schema_id)?;
    validate::schema_version(q.schema_version)?;
    let idem = idempotency_key(&headers)?;
    let declared: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| AppError::invalid("Content-Length is required for uploads"))?;
    let content_type = content_type_of(&headers);
    let name = store::sanitize_name(q.name.as_deref().unwrap_or(""));
    let contract = Contract {
        backend: Backend::R2Assets,
        schema_id: q.schema_id,
        schema_version: q.schema_version,
    };
    let key = store::new_object_key();
    let reservation = {
        let (user, bucket_id, contract) = (user.clone(), bucket_id.clone(), contract.clone());
        let (key, name, content_type) = (key.clone(), name.clone(), content_type.clone());
        let max = st.max_upload_bytes;
        st.db
            .write(move |tx| {
                let intent = store::UploadIntent {
                    object_key: &key,
                    idempotency_key: idem.as_deref(),
                    name: &name,
                    content_type: &content_type,
                };
                store::reserve(tx, &user, &bucket_id, &contract, declared, max, &intent)
            })
            .await?
    };
    if let store::Reservation::Replay(row) = reservation {
        // Read the repeated body to its end first: a browser still sending it could report
        // an answer that arrives mid-upload as a network failure.
        let mut rest = body_stream(body);
        while let Some(chunk) = rest.next().await {
            chunk?;
        }
        let answer = Json(info(&st, row)).into_response();
        return Ok(answer_or_lose(&st, &user.id, answer));
    }
    // From here on the reservation must be settled or released whatever happens to this
    // request: if the client disconnects, hyper drops the handler future, so the rest runs as
    // its own task (the body then fails and the failure path releases the bytes).
    let user_id = user.id.clone();
    let pending = PendingUpload {
        st: st.clone(),
        user,
        bucket_id,
        contract,
        declared,
        key,
        name,
        content_type,
    };
    let row = tokio::spawn(pending.finish(body))
        .await
        .map_err(|e| AppError::internal("upload task", e))??;
    Ok(answer_or_lose(
        &st,
        &user_id,
        Json(info(&st, row)).into_response(),
    ))
}

/// An upload whose quota is reserved and whose object is recorded as pending.
struct PendingUpload {
    st: Arc<AppState>,
    user: crate::store::users::UserRow,
    bucket_id: String,
    contract: Contract,
    declared: u64,
    key: String,
    name: String,
    content_type: String,
}

impl PendingUpload {
    /// Streams, then settles; on any failure releases the reservation and the object.
    async fn finish(self, body: Body) -> AppResult<AssetRow> {
        let st = self.st.clone();
        let key = self.key.clone();
        let declared = self.declared;
        let settled = match stream_to_store(&st, &key, body_stream(body), declared).await {
            Ok(size) => {
                let row = AssetRow {
                    object_key: key.clone(),
                    name: self.name,
                    size,
                    content_type: self.content_type,
                    uploaded_at: store::uploaded_now(),
                };
                let (u, b, c, r) = (
                    self.user.clone(),
                    self.bucket_id,
                    self.contract,
                    row.clone(),
                );
                st.db
                    .write(move |tx| store::settle(tx, &u, &b, &c, declared, &r))
                    .await
                    .map(|_| row)
            }
            Err(e) => Err(e),
        };
        if settled.is_err() {
            let (user_id, k) = (self.user.id.clone(), key.clone());
            if let Err(release) = st
                .db
                .write(move |tx| store::abandon(tx, &user_id, declared, &k))
                .await
            {
                tracing::error!(%release, "could not release an upload reservation");
            }
            delete_objects(&st, std::slice::from_ref(&key)).await;
        }
        settled
    }
}

/// `GET /v1/assets/{bucketId}`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(bucket_id): PathParams<String>,
) -> AppResult<Json<AssetList>> {
    let b = bucket_id.clone();
    let (version, rows) = st.db.read(move |tx| store::list(tx, &user.id, &b)).await?;
    Ok(Json(AssetList {
        bucket_id,
        version,
        assets: rows.into_iter().map(|r| info(&st, r)).collect(),
    }))
}

/// `DELETE /v1/assets/{bucketId}/{objectKey}`.
pub async fn delete(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((bucket_id, key)): PathParams<(String, String)>,
) -> AppResult<Json<Value>> {
    let k = key.clone();
    st.db
        .write(move |tx| store::delete(tx, &user.id, &bucket_id, &k))
        .await?;
    let st2 = st.clone();
    // Its own task, so a client that hangs up cannot leave the object behind.
    tokio::spawn(async move { delete_objects(&st2, std::slice::from_ref(&key)).await })
        .await
        .map_err(|e| AppError::internal("object deletion task", e))?;
    Ok(Json(json!({"deleted": true})))
}

/// Removes objects from the store, logging failures, and ends the deletion records of those
/// gone ([`store::doom`]; failures stay recorded for the sweep); returns how many are gone.
pub async fn delete_objects(st: &AppState, keys: &[String]) -> u64 {
    let mut gone = Vec::new();
    for key in keys {
        match st.objects.delete(&objects::path_of(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => gone.push(key.clone()),
            Err(e) => tracing::warn!(%e, key, "could not delete object"),
        }
    }
    let count = gone.len() as u64;
    if let Err(e) = st.db.write(move |tx| store::forget_doomed(tx, &gone)).await {
        tracing::warn!(%e, "could not end deletion records (the sweep retries)");
    }
    count
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987).
fn disposition(kind: &str, name: &str) -> HeaderValue {
    HeaderValue::from_str(&monodit_service::assets::disposition(kind, name))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// `GET /v1/objects/{objectKey}?exp=&sig=`: the signature is the authorisation, so it works in
/// `<img src>`. Responses can never run script on this origin: `nosniff`, `CSP: sandbox`, and
/// anything outside the image/audio/video/PDF allow-list (SVG included) is an attachment
/// served as `application/octet-stream`.
pub async fn download(
    State(st): State<Arc<AppState>>,
    PathParams(key): PathParams<String>,
    QueryParams(q): QueryParams<SignedQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let forbidden = |m: &str| AppError::new(ErrorCode::Forbidden, m.to_string());
    let exp: u64 = q
        .exp
        .as_deref()
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| forbidden("missing or malformed exp"))?;
    let sig = q.sig.as_deref().ok_or_else(|| forbidden("missing sig"))?;
    match st.signer.verify(&key, exp, sig, st.env.now_secs()) {
        Ok(()) => {}
        Err(SignatureError::Invalid) => return Err(forbidden("invalid signature")),
        Err(SignatureError::Expired) => return Err(forbidden("this download URL has expired")),
    }
    if !store::is_object_key(&key) {
        return Err(AppError::not_found("no such object"));
    }
    let k = key.clone();
    let row = st
        .db
        .read(move |tx| store::by_key(tx, &k))
        .await?
        .ok_or_else(|| AppError::not_found("no such object"))?;
    let range = parse_range(headers.get(header::RANGE), row.size);
    let opts = object_store::GetOptions {
        range: range.map(|(a, b)| object_store::GetRange::Bounded(a..b + 1)),
        ..Default::default()
    };
    let got = st.objects.get_opts(&objects::path_of(&key), opts).await?;
    // Normalised again: rows written before types were normalised may hold anything.
    let stored_type = objects::normalize_content_type(&row.content_type);
    let inline = inline_allowed(&stored_type);
    let content_type = if inline {
        HeaderValue::from_str(&stored_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (
            header::CONTENT_LENGTH,
            HeaderValue::from(range.map(|(a, b)| b - a + 1).unwrap_or(row.size)),
        ),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (
            header::CONTENT_DISPOSITION,
            disposition(if inline { "inline" } else { "attachment" }, &row.name),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        ),
    ];
    let body = Body::from_stream(got.into_stream());
    Ok(match range {
        Some((a, b)) => {
            let content_range = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", row.size))
                .unwrap_or(HeaderValue::from_static("bytes */0"));
            (
                StatusCode::PARTIAL_CONTENT,
                headers,
                [(header::CONTENT_RANGE, content_range)],
                body,
            )
                .into_response()
        }
        None => (headers, body).into_response(),
    })
}

/// One `Range: bytes=a-b | a- | -n` within `size`, as inclusive bounds
/// ([`monodit_service::assets::parse_range`]); anything else serves the whole object.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Option<(u64, u64)> {
    monodit_service::assets::parse_range(value.and_then(|v| v.to_str().ok()), size)
}

#[cfg(test)]
mod tests {
    use super::parse_range;
    use axum::http::HeaderValue;

    fn r(s: &str, size: u64) -> Option<(u64, u64)> {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(r("bytes=2-4", 10), Some((2, 4)));
        assert_eq!(r("bytes=5-", 10), Some((5, 9)));
        assert_eq!(r("bytes=-3", 10), Some((7, 9)));
        assert_eq!(r("bytes=-30", 10), Some((0, 9)));
        assert_eq!(r("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(r("bytes=10-", 10), None);
        assert_eq!(r("bytes=4-2", 10), None);
        assert_eq!(r("bytes=0-1,3-4", 10), None);
        assert_eq!(r("items=0-1", 10), None);
        assert_eq!(r("bytes=-0", 10), None);
        assert_eq!(r("bytes=0-", 0), None);
    }
}
