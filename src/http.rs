//! The backend HTTP client: one method per route of `monodit_core::api`.
//!
//! Every failure is a [`monodit_core::Error`] with a stable code, so the sync engine can ask
//! [`ErrorCode::is_transient`] whether to retry (network, timeout, 5xx) or roll back:
//! - the request never got an answer → `NETWORK` (or `TIMEOUT` after [`REQUEST_TIMEOUT_MS`]);
//! - the server answered with an error → its `{code, message, detail}` body, or
//!   [`ErrorCode::from_http_status`] when the body is not one;
//! - the answer does not parse → `INTERNAL` (never a panic).
//!
//! Uploads go through `XMLHttpRequest`, because `fetch` reports no upload progress; how they
//! are retried and resumed is [`crate::uploads`]'s business.

use gloo_net::http::{Request, RequestBuilder, Response};
use monodit_core::api::{
    AssetInfo, AssetList, BatchMetaRequest, BatchMetaResponse, BucketInfo, CollectionOp, Contract,
    DeletedBucket, DevFaults, Document, DocumentMeta, InstanceInfo, InstanceRegistration, Me,
    NewUpload, NewUser, Plan, PutDocument, SetFaults, SetPlan, UploadPart, UploadSession, Usage,
};
use monodit_core::buckets::Backend;
use monodit_core::kv::{KvEntry, KvList, PutKv};
use monodit_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// How long one request may take before it is aborted with `TIMEOUT`.
/// Upload bodies are exempt: their duration grows with the file and they report progress
/// (they time out after [`crate::protocol::UPLOAD_IDLE_TIMEOUT_MS`] without any).
pub const REQUEST_TIMEOUT_MS: i32 = 30_000;

/// How often an upload body's request is checked for a stall (ms).
const STALL_CHECK_MS: i32 = 5_000;

/// Counters of requests actually sent (shared by every clone of an [`Api`]).
///
/// They exist so tests (and the benchmark) can prove coalescing: the count moves only when a
/// request really leaves the page.
#[derive(Debug, Default)]
pub struct RequestCounters {
    /// Every request sent.
    pub total: Cell<u64>,
    /// `POST /v1/meta` requests sent.
    pub meta: Cell<u64>,
    /// `GET /v1/documents/{id}` requests sent.
    pub document_gets: Cell<u64>,
    /// `PUT /v1/documents/{id}` requests sent.
    pub document_puts: Cell<u64>,
    /// `PUT /v1/uploads/{id}/parts/{n}` requests sent.
    pub upload_parts: Cell<u64>,
}

/// An authenticated client of one backend. Cheap to clone (clones share counters).
#[derive(Debug, Clone)]
pub struct Api {
    base_url: Rc<str>,
    token: Rc<str>,
    counters: Rc<RequestCounters>,
    resumable_upload_bytes: f64,
}

/// A conditional document read: the server had nothing newer than the given version.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentFetch {
    /// `304 Not Modified`: the cached version is current.
    NotModified,
    /// The document (new or changed).
    Fresh(Document),
    /// The bucket has never been written (or was deleted).
    Missing,
}

/// The one-shot slot an upload's XHR handlers settle.
type SettleSlot =
    Rc<std::cell::RefCell<Option<futures::channel::oneshot::Sender<Result<(), ErrorCode>>>>>;

fn enc(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}

fn network_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::Network,
        format!("{what}: the backend could not be reached ({err})"),
    )
}

/// Turns an error answer into the server's own error when it sent one.
fn error_from_body(status: u16, body: &str) -> Error {
    if let Ok(err) = serde_json::from_str::<Error>(body) {
        return err;
    }
    let code = ErrorCode::from_http_status(status);
    Error::new(code, format!("HTTP {status}: {}", truncate(body, 200)))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Parses a 2xx answer's JSON; a body of the wrong shape is INTERNAL (never a panic).
fn parse_text<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            format!("{what}: unexpected answer from the backend ({e})"),
        )
    })
}

/// Keeps an upload's handlers alive while it runs; on drop detaches them and, unless the
/// request already settled, aborts it.
struct XhrGuard<C> {
    xhr: web_sys::XmlHttpRequest,
    settled: bool,
    /// The stall check's timer.
    interval: Option<i32>,
    _closures: C,
}

impl<C> Drop for XhrGuard<C> {
    fn drop(&mut self) {
        if let (Some(h), Some(win)) = (self.interval, web_sys::window()) {
            win.clear_interval_with_handle(h);
        }
        if let Ok(upload) = self.xhr.upload() {
            upload.set_onprogress(None);
        }
        self.xhr.set_onload(None);
        self.xhr.set_onerror(None);
        self.xhr.set_onabort(None);
        self.xhr.set_ontimeout(None);
        if !self.settled {
            let _ = self.xhr.abort();
        }
    }
}

/// Aborts a fetch when dropped or after the timeout, whichever comes first.
struct Deadline {
    controller: Option<web_sys::AbortController>,
    handle: Option<i32>,
    _cb: Option<Closure<dyn FnMut()>>,
}

impl Deadline {
    fn new(ms: i32) -> Deadline {
        let controller = web_sys::AbortController::new().ok();
        let mut handle = None;
        let mut cb_keep = None;
        if let (Some(c), Some(win)) = (controller.clone(), web_sys::window()) {
            let cb = Closure::<dyn FnMut()>::new(move || c.abort());
            handle = win
                .set_timeout_with_callback_and_timeout_and_arguments_0(
                    cb.as_ref().unchecked_ref(),
                    ms,
                )
                .ok();
            cb_keep = Some(cb);
        }
        Deadline {
            controller,
            handle,
            _cb: cb_keep,
        }
    }

    fn signal(&self) -> Option<web_sys::AbortSignal> {
        self.controller.as_ref().map(|c| c.signal())
    }

    fn expired(&self) -> bool {
        self.signal().map(|s| s.aborted()).unwrap_or(false)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let (Some(h), Some(win)) = (self.handle, web_sys::window()) {
            win.clear_timeout_with_handle(h);
        }
    }
}

impl Api {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8787`) authenticating with `token`.
    pub fn new(base_url: &str, token: &str) -> Api {
        Api {
            base_url: Rc::from(base_url.trim_end_matches('/')),
            token: Rc::from(token),
            counters: Rc::new(RequestCounters::default()),
            resumable_upload_bytes: crate::uploads::DEFAULT_RESUMABLE_UPLOAD_BYTES,
        }
    }

    /// This client with another resumable-upload threshold: uploads of more than `bytes`
    /// use the resumable protocol (see [`crate::uploads`]), smaller ones one request.
    pub fn with_resumable_upload_bytes(mut self, bytes: f64) -> Api {
        self.resumable_upload_bytes = bytes;
        self
    }

    /// Uploads larger than this many bytes are resumable
    /// ([`crate::uploads::DEFAULT_RESUMABLE_UPLOAD_BYTES`] unless set).
    pub fn resumable_upload_bytes(&self) -> f64 {
        self.resumable_upload_bytes
    }

    /// The backend's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// SHA-256 of the token, hex: lets the engine remember which user a token belonged to
    /// without storing the token. None where WebCrypto is unavailable (insecure context).
    pub async fn token_fingerprint(&self) -> Option<String> {
        let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
        let crypto = get(&js_sys::global(), "crypto").filter(|c| c.is_object())?;
        let subtle = get(&crypto, "subtle").filter(|s| s.is_object())?;
        let digest: js_sys::Function = get(&subtle, "digest")?.dyn_into().ok()?;
        let data = js_sys::Uint8Array::from(self.token.as_bytes());
        let promise: js_sys::Promise = digest
            .call2(&subtle, &JsValue::from_str("SHA-256"), &data)
            .ok()?
            .dyn_into()
            .ok()?;
        let buf = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Requests this client (and its clones) actually sent.
    pub fn counters(&self) -> &RequestCounters {
        &self.counters
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn authed(&self, builder: RequestBuilder) -> RequestBuilder {
        builder.header("Authorization", &format!("Bearer {}", self.token))
    }

    /// Sends with a timeout; maps transport failures to NETWORK / TIMEOUT.
    async fn send(
        &self,
        what: &str,
        builder: RequestBuilder,
        body: Option<String>,
    ) -> Result<Response, Error> {
        self.send_within(what, builder, body, REQUEST_TIMEOUT_MS)
            .await
    }

    /// [`Api::send`] with another timeout (ms).
    async fn send_within(
        &self,
        what: &str,
        builder: RequestBuilder,
        body: Option<String>,
        timeout_ms: i32,
    ) -> Result<Response, Error> {
        let deadline = Deadline::new(timeout_ms);
        let signal = deadline.signal();
        let builder = builder.abort_signal(signal.as_ref());
        let request = match body {
            Some(b) => builder
                .header("Content-Type", "application/json")
                .body(b)
                .map_err(|e| Error::new(ErrorCode::Internal, format!("{what}: {e}")))?,
            None => builder
                .build()
                .map_err(|e| Error::new(ErrorCode::Internal, format!("{what}: {e}")))?,
        };
        self.counters.total.set(self.counters.total.get() + 1);
        match request.send().await {
            Ok(resp) => Ok(resp),
            Err(_) if deadline.expired() => Err(Error::new(
                ErrorCode::Timeout,
                format!("{what}: no answer within {timeout_ms} ms"),
            )),
            Err(e) => Err(network_error(what, e)),
        }
    }

    async fn read_text(what: &str, resp: &Response) -> Result<String, Error> {
        resp.text().await.map_err(|e| network_error(what, e))
    }

    /// Checks the status and parses a JSON answer.
    async fn parse<T: DeserializeOwned>(what: &str, resp: Response) -> Result<T, Error> {
        let status = resp.status();
        let text = Self::read_text(what, &resp).await?;
        if !(200..300).contains(&status) {
            return Err(error_from_body(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorCode::Internal,
                format!("{what}: unexpected answer from the backend ({e})"),
            )
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, Error> {
        let resp = self
            .send(what, self.authed(Request::get(&self.url(path))), None)
            .await?;
        Self::parse(what, resp).await
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        what: &str,
        builder: RequestBuilder,
        body: &B,
    ) -> Result<T, Error> {
        let body = serde_json::to_string(body)
            .map_err(|e| Error::invalid(format!("{what}: cannot encode the body ({e})")))?;
        let resp = self.send(what, self.authed(builder), Some(body)).await?;
        Self::parse(what, resp).await
    }

    async fn delete_json<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, Error> {
        let resp = self
            .send(what, self.authed(Request::delete(&self.url(path))), None)
            .await?;
        Self::parse(what, resp).await
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<Me, Error> {
        self.get_json("me", "/v1/me").await
    }

    /// `GET /v1/usage`.
    pub async fn usage(&self) -> Result<Usage, Error> {
        self.get_json("usage", "/v1/usage").await
    }

    /// `GET /v1/buckets`: the topology.
    pub async fn buckets(&self) -> Result<Vec<BucketInfo>, Error> {
        self.get_json("buckets", "/v1/buckets").await
    }

    /// `DELETE /v1/buckets/{backend}/{bucketId}`.
    pub async fn delete_bucket(
        &self,
        backend: Backend,
        bucket_id: &str,
    ) -> Result<DeletedBucket, Error> {
        let path = format!("/v1/buckets/{}/{}", backend.as_str(), enc(bucket_id));
        self.delete_json("delete bucket", &path).await
    }

    /// `GET /v1/documents/{bucketId}`, conditional on `if_none_match` (a version we hold).
    pub async fn document(
        &self,
        bucket_id: &str,
        if_none_match: Option<u64>,
    ) -> Result<DocumentFetch, Error> {
        let what = "get document";
        // `missing=empty`: a never-written bucket answers 204, not a 404 the browser would
        // log as a failed request (older servers still answer 404, handled below).
        let mut builder = self.authed(Request::get(
            &self.url(&format!("/v1/documents/{}?missing=empty", enc(bucket_id))),
        ));
        if let Some(v) = if_none_match {
            builder = builder.header("If-None-Match", &format!("\"{v}\""));
        }
        self.counters
            .document_gets
            .set(self.counters.document_gets.get() + 1);
        let resp = self.send(what, builder, None).await?;
        match resp.status() {
            304 => Ok(DocumentFetch::NotModified),
            204 => Ok(DocumentFetch::Missing),
            404 => {
                // A 404 with a NOT_FOUND body is "never written"; anything else is an error.
                let text = Self::read_text(what, &resp).await?;
                let err = error_from_body(404, &text);
                if err.code == ErrorCode::NotFound {
                    Ok(DocumentFetch::Missing)
                } else {
                    Err(err)
                }
            }
            _ => Self::parse(what, resp).await.map(DocumentFetch::Fresh),
        }
    }

    /// `GET /v1/documents/{bucketId}/meta`.
    pub async fn document_meta(&self, bucket_id: &str) -> Result<DocumentMeta, Error> {
        self.get_json(
            "document meta",
            &format!("/v1/documents/{}/meta", enc(bucket_id)),
        )
        .await
    }

    /// `PUT /v1/documents/{bucketId}`.
    pub async fn put_document(
        &self,
        bucket_id: &str,
        body: &PutDocument,
    ) -> Result<DocumentMeta, Error> {
        self.counters
            .document_puts
            .set(self.counters.document_puts.get() + 1);
        let url = self.url(&format!("/v1/documents/{}", enc(bucket_id)));
        self.send_json("put document", Request::put(&url), body)
            .await
    }

    /// `POST /v1/meta`: metadata of many buckets in one request.
    pub async fn batch_meta(&self, req: &BatchMetaRequest) -> Result<BatchMetaResponse, Error> {
        self.counters.meta.set(self.counters.meta.get() + 1);
        self.send_json("batch meta", Request::post(&self.url("/v1/meta")), req)
            .await
    }

    /// `GET /v1/assets/{bucketId}`.
    pub async fn assets(&self, bucket_id: &str) -> Result<AssetList, Error> {
        self.get_json("list assets", &format!("/v1/assets/{}", enc(bucket_id)))
            .await
    }

    /// `DELETE /v1/assets/{bucketId}/{objectKey}`.
    pub async fn delete_asset(&self, bucket_id: &str, object_key: &str) -> Result<(), Error> {
        let path = format!("/v1/assets/{}/{}", enc(bucket_id), enc(object_key));
        let _: serde_json::Value = self.delete_json("delete asset", &path).await?;
        Ok(())
    }

    /// `POST /v1/assets/{bucketId}?name=&schemaId=&schemaVersion=` with the Blob as the body,
    /// reporting `(loaded, total)` bytes as the upload progresses. One attempt, without an
    /// idempotency key: [`crate::uploads`] is what retries safely.
    pub async fn upload_asset(
        &self,
        bucket_id: &str,
        contract: &Contract,
        blob: &web_sys::Blob,
        name: &str,
        on_progress: impl Fn(f64, f64) + 'static,
    ) -> Result<AssetInfo, Error> {
        self.upload_asset_keyed(bucket_id, contract, blob, name, None, on_progress)
            .await
    }

    /// [`Api::upload_asset`] with an `Idempotency-Key`: a repeat of a key that already
    /// produced an asset answers that asset and stores nothing; while the first attempt is
    /// still streaming the server answers CONFLICT (retry later).
    pub async fn upload_asset_keyed(
        &self,
        bucket_id: &str,
        contract: &Contract,
        blob: &web_sys::Blob,
        name: &str,
        idempotency_key: Option<&str>,
        on_progress: impl Fn(f64, f64) + 'static,
    ) -> Result<AssetInfo, Error> {
        let url = self.url(&format!(
            "/v1/assets/{}?name={}&schemaId={}&schemaVersion={}",
            enc(bucket_id),
            enc(name),
            enc(&contract.schema_id),
            contract.schema_version
        ));
        let text = self
            .send_blob(
                "upload asset",
                "POST",
                &url,
                idempotency_key,
                blob,
                Box::new(on_progress),
            )
            .await?;
        parse_text("upload asset", &text)
    }

    /// `POST /v1/uploads`: starts a resumable upload, or answers the session that
    /// `idempotencyKey` already started (with `completed` once it is done).
    pub async fn create_upload(&self, req: &NewUpload) -> Result<UploadSession, Error> {
        self.send_json("start upload", Request::post(&self.url("/v1/uploads")), req)
            .await
    }

    /// `GET /v1/uploads/{uploadId}`: the session and the parts stored so far.
    pub async fn upload_session(&self, upload_id: &str) -> Result<UploadSession, Error> {
        self.get_json("upload session", &format!("/v1/uploads/{}", enc(upload_id)))
            .await
    }

    /// `PUT /v1/uploads/{uploadId}/parts/{partNumber}` with `part` (exactly that part's bytes)
    /// as the body, reporting `(loaded, total)` bytes of the part as it goes.
    pub async fn put_upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        part: &web_sys::Blob,
        on_progress: impl Fn(f64, f64) + 'static,
    ) -> Result<UploadPart, Error> {
        self.counters
            .upload_parts
            .set(self.counters.upload_parts.get() + 1);
        let url = self.url(&format!(
            "/v1/uploads/{}/parts/{part_number}",
            enc(upload_id)
        ));
        let text = self
            .send_blob(
                "upload part",
                "PUT",
                &url,
                None,
                part,
                Box::new(on_progress),
            )
            .await?;
        parse_text("upload part", &text)
    }

    /// `POST /v1/uploads/{uploadId}/complete` of an upload of `size` bytes: the asset
    /// (CONFLICT with `detail.missing` while parts are missing; a repeat answers the same
    /// asset). The server joins the parts before it answers, so the wait grows with `size`
    /// (20 MB/s assumed on top of [`REQUEST_TIMEOUT_MS`]).
    pub async fn complete_upload(&self, upload_id: &str, size: u64) -> Result<AssetInfo, Error> {
        let what = "complete upload";
        let url = self.url(&format!("/v1/uploads/{}/complete", enc(upload_id)));
        let timeout_ms = (i64::from(REQUEST_TIMEOUT_MS) + (size / 20_000) as i64)
            .min(i64::from(i32::MAX)) as i32;
        let builder = self.authed(Request::post(&url));
        let resp = self.send_within(what, builder, None, timeout_ms).await?;
        Self::parse(what, resp).await
    }

    /// `DELETE /v1/uploads/{uploadId}`: aborts the upload and releases its reservation.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<(), Error> {
        let path = format!("/v1/uploads/{}", enc(upload_id));
        let _: Value = self.delete_json("abort upload", &path).await?;
        Ok(())
    }

    /// Sends `blob` as the raw body of one request through `XMLHttpRequest` (the only browser
    /// API that reports upload progress) and returns the 2xx answer's text. (The callback is
    /// boxed so this large function is compiled once, not once per caller.)
    ///
    /// The body is always a slice of `blob`, never the object itself: Chromium refuses
    /// (`net::ERR_ACCESS_DENIED`) to send a `File` that was picked in another process, such
    /// as a sandboxed widget iframe, while a slice of it goes through. The request is aborted
    /// when the returned future is dropped, so an abandoned upload stops sending.
    async fn send_blob(
        &self,
        what: &str,
        method: &str,
        url: &str,
        idempotency_key: Option<&str>,
        blob: &web_sys::Blob,
        on_progress: Box<dyn Fn(f64, f64)>,
    ) -> Result<String, Error> {
        let internal = |e: JsValue| Error::new(ErrorCode::Internal, format!("{what}: {e:?}"));
        let content_type = blob.type_();
        let content_type = if content_type.is_empty() {
            "application/octet-stream".to_string()
        } else {
            content_type
        };
        let body = blob
            .slice_with_f64_and_f64_and_content_type(0.0, blob.size(), &content_type)
            .map_err(internal)?;
        let xhr = web_sys::XmlHttpRequest::new().map_err(internal)?;
        xhr.open(method, url).map_err(internal)?;
        xhr.set_request_header("Authorization", &format!("Bearer {}", self.token))
            .map_err(internal)?;
        xhr.set_request_header("Content-Type", &content_type)
            .map_err(internal)?;
        if let Some(key) = idempotency_key {
            xhr.set_request_header("Idempotency-Key", key)
                .map_err(internal)?;
        }
        let last_activity = Rc::new(Cell::new(js_sys::Date::now()));
        let activity = last_activity.clone();
        let progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                activity.set(js_sys::Date::now());
                let total = if e.length_computable() {
                    e.total()
                } else {
                    f64::NAN
                };
                on_progress(e.loaded(), total);
            });
        if let Ok(upload) = xhr.upload() {
            upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        }
        // Settles once: load → Ok(status), error/abort/timeout → Err(kind).
        let (tx, rx) = futures::channel::oneshot::channel::<Result<(), ErrorCode>>();
        let tx = Rc::new(std::cell::RefCell::new(Some(tx)));
        let settle = |tx: SettleSlot, r| {
            Closure::<dyn FnMut()>::new(move || {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(r);
                }
            })
        };
        let on_load = settle(tx.clone(), Ok(()));
        let on_error = settle(tx.clone(), Err(ErrorCode::Network));
        let on_timeout = settle(tx.clone(), Err(ErrorCode::Timeout));
        // A request that makes no progress for UPLOAD_IDLE_TIMEOUT_MS is given up as TIMEOUT
        // (its outcome is unknown: the caller may repeat it with the same key). No total
        // timeout: a large body on a slow link legitimately takes long.
        let stalled = {
            let xhr = xhr.clone();
            Closure::<dyn FnMut()>::new(move || {
                let idle = js_sys::Date::now() - last_activity.get();
                if idle > f64::from(crate::protocol::UPLOAD_IDLE_TIMEOUT_MS) {
                    if let Some(tx) = tx.borrow_mut().take() {
                        let _ = tx.send(Err(ErrorCode::Timeout));
                    }
                    let _ = xhr.abort();
                }
            })
        };
        let interval = web_sys::window().and_then(|w| {
            w.set_interval_with_callback_and_timeout_and_arguments_0(
                stalled.as_ref().unchecked_ref(),
                STALL_CHECK_MS,
            )
            .ok()
        });
        xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
        xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        xhr.set_onabort(Some(on_error.as_ref().unchecked_ref()));
        xhr.set_ontimeout(Some(on_timeout.as_ref().unchecked_ref()));
        // From here on, dropping this future aborts the request and detaches the handlers
        // before the closures are freed, so a late event cannot call freed code.
        let guard = XhrGuard {
            xhr: xhr.clone(),
            settled: false,
            interval,
            _closures: (progress, on_load, on_error, on_timeout, stalled),
        };
        self.counters.total.set(self.counters.total.get() + 1);
        xhr.send_with_opt_blob(Some(&body))
            .map_err(|e| network_error(what, format!("{e:?}")))?;
        let outcome = rx.await.unwrap_or(Err(ErrorCode::Network));
        let mut guard = guard;
        guard.settled = true;
        drop(guard);
        match outcome {
            Err(code) => Err(Error::new(
                code,
                format!("{what}: the backend could not be reached"),
            )),
            Ok(()) => {
                let status = xhr.status().unwrap_or(0);
                let text = xhr.response_text().ok().flatten().unwrap_or_default();
                if status == 0 {
                    return Err(network_error(what, "no response"));
                }
                if !(200..300).contains(&status) {
                    return Err(error_from_body(status, &text));
                }
                Ok(text)
            }
        }
    }

    /// `PUT /v1/instances/{instanceId}`.
    pub async fn register_instance(
        &self,
        instance_id: &str,
        reg: &InstanceRegistration,
    ) -> Result<InstanceInfo, Error> {
        let url = self.url(&format!("/v1/instances/{}", enc(instance_id)));
        self.send_json("register instance", Request::put(&url), reg)
            .await
    }

    /// `GET /v1/instances`.
    pub async fn instances(&self) -> Result<Vec<InstanceInfo>, Error> {
        self.get_json("instances", "/v1/instances").await
    }

    /// `DELETE /v1/instances/{instanceId}`.
    pub async fn delete_instance(&self, instance_id: &str) -> Result<(), Error> {
        let path = format!("/v1/instances/{}", enc(instance_id));
        let _: serde_json::Value = self.delete_json("delete instance", &path).await?;
        Ok(())
    }

    /// `GET /v1/plugins` (core `api::PluginInfo` list). Passed on as JSON: the host only
    /// hands it to the page, and a typed copy would cost bundle bytes for nothing.
    pub async fn plugins(&self) -> Result<serde_json::Value, Error> {
        self.get_json("plugins", "/v1/plugins").await
    }

    /// `DELETE /v1/plugins/{pluginId}` (core `api::DeletedPlugin`, as JSON like `plugins`).
    pub async fn delete_plugin(&self, plugin_id: &str) -> Result<serde_json::Value, Error> {
        let path = format!("/v1/plugins/{}", enc(plugin_id));
        self.delete_json("delete plugin data", &path).await
    }

    /// `POST /v1/collections/{pluginId}/{collection}/{op}` with the op (tag included) as body.
    pub async fn collection(
        &self,
        plugin_id: &str,
        collection: &str,
        op: &CollectionOp,
    ) -> Result<serde_json::Value, Error> {
        let body = serde_json::to_value(op).map_err(|e| {
            Error::invalid(format!("collection: cannot encode the operation ({e})"))
        })?;
        let op_name = body
            .get("op")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::new(ErrorCode::Internal, "collection: operation without a name"))?
            .to_string();
        let url = self.url(&format!(
            "/v1/collections/{}/{}/{}",
            enc(plugin_id),
            enc(collection),
            enc(&op_name)
        ));
        self.send_json("collection", Request::post(&url), &body)
            .await
    }

    /// `PUT /v1/dev/plan` (servers started with `--dev` only).
    pub async fn dev_set_plan(&self, plan: Plan, addons: u32) -> Result<Me, Error> {
        self.dev_set_plan_limit(plan, addons, None).await
    }

    /// `GET /v1/kv/{pluginId}/{key}`: the value, `None` when the key is unset.
    pub async fn kv_get(&self, plugin_id: &str, key: &str) -> Result<Option<Value>, Error> {
        // `missing=empty`: an unset key answers 204, not a 404 the browser would log as a
        // failed request (older servers still answer 404 NOT_FOUND, handled below).
        let path = format!("/v1/kv/{}/{}?missing=empty", enc(plugin_id), enc(key));
        let what = "kv get";
        let resp = self
            .send(what, self.authed(Request::get(&self.url(&path))), None)
            .await?;
        if resp.status() == 204 {
            return Ok(None);
        }
        match Self::parse::<KvEntry>(what, resp).await {
            Ok(e) => Ok(Some(e.value)),
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/kv/{pluginId}/{key}`.
    pub async fn kv_set(&self, plugin_id: &str, key: &str, value: Value) -> Result<KvEntry, Error> {
        let path = format!("/v1/kv/{}/{}", enc(plugin_id), enc(key));
        self.send_json("kv set", Request::put(&self.url(&path)), &PutKv { value })
            .await
    }

    /// `DELETE /v1/kv/{pluginId}/{key}`: whether the key existed.
    pub async fn kv_delete(&self, plugin_id: &str, key: &str) -> Result<bool, Error> {
        let path = format!("/v1/kv/{}/{}", enc(plugin_id), enc(key));
        let v: Value = self.delete_json("kv delete", &path).await?;
        Ok(v.get("deleted").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `GET /v1/kv/{pluginId}?prefix=&after=`: one page of entries in key order (at most
    /// `kv::MAX_LIST`), after the key `after` (`""`: from the start).
    pub async fn kv_list(
        &self,
        plugin_id: &str,
        prefix: &str,
        after: &str,
    ) -> Result<KvList, Error> {
        let path = format!(
            "/v1/kv/{}?prefix={}&after={}",
            enc(plugin_id),
            enc(prefix),
            enc(after)
        );
        self.get_json("kv list", &path).await
    }

    /// `PUT /v1/dev/faults` (dev and tests only): the caller's next `document_put_errors`
    /// document writes answer a real 500 INTERNAL from the server.
    pub async fn dev_set_faults(&self, document_put_errors: u32) -> Result<SetFaults, Error> {
        self.send_json(
            "set faults",
            Request::put(&self.url("/v1/dev/faults")),
            &SetFaults {
                document_put_errors,
            },
        )
        .await
    }

    /// `PUT /v1/dev/faults` (dev and tests only) with lost upload answers: the caller's next
    /// `upload_response_lost` upload requests (single-shot, part, complete) do their work and
    /// commit, then the server drops the connection without answering.
    pub async fn dev_set_upload_faults(
        &self,
        upload_response_lost: u32,
    ) -> Result<DevFaults, Error> {
        self.send_json(
            "set faults",
            Request::put(&self.url("/v1/dev/faults")),
            &DevFaults {
                upload_response_lost,
                ..DevFaults::default()
            },
        )
        .await
    }

    /// `PUT /v1/dev/faults` (dev and tests only) with lost document answers: the caller's
    /// next `document_response_lost` document writes are stored, then the server drops the
    /// connection without answering.
    pub async fn dev_set_document_faults(
        &self,
        document_response_lost: u32,
    ) -> Result<DevFaults, Error> {
        self.send_json(
            "set faults",
            Request::put(&self.url("/v1/dev/faults")),
            &DevFaults {
                document_response_lost,
                ..DevFaults::default()
            },
        )
        .await
    }

    /// `PUT /v1/dev/plan` with a storage limit override in bytes (dev and tests only), so the
    /// quota paths can be reached with small data.
    pub async fn dev_set_plan_limit(
        &self,
        plan: Plan,
        addons: u32,
        limit_bytes: Option<u64>,
    ) -> Result<Me, Error> {
        self.send_json(
            "set plan",
            Request::put(&self.url("/v1/dev/plan")),
            &SetPlan {
                plan,
                addons,
                limit_bytes,
            },
        )
        .await
    }

    /// `POST /v1/dev/users` (servers started with `--dev` only): a fresh user and its token.
    pub async fn dev_new_user(base_url: &str, plan: Plan) -> Result<NewUser, Error> {
        let api = Api::new(base_url, "");
        let url = api.url("/v1/dev/users");
        let body = serde_json::to_string(&SetPlan {
            plan,
            addons: 0,
            limit_bytes: None,
        })
        .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        let resp = api
            .send("new user", Request::post(&url), Some(body))
            .await?;
        Self::parse("new user", resp).await
    }
}
