//! Asset routes: lists, deletion, single-shot uploads and the resumable upload protocol,
//! all uploads sent through `XMLHttpRequest` (upload progress).

use super::{enc, error_from_body, network_error, parse_text, Api, REQUEST_TIMEOUT_MS};
use gloo_net::http::Request;
use monodit_core::api::{AssetInfo, AssetList, Contract, NewUpload, UploadPart, UploadSession};
use monodit_core::routes;
use monodit_core::{Error, ErrorCode};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// How often an upload body's request is checked for a stall (ms).
const STALL_CHECK_MS: i32 = 5_000;

/// The one-shot slot an upload's XHR handlers settle.
type SettleSlot =
    Rc<std::cell::RefCell<Option<futures::channel::oneshot::Sender<Result<(), ErrorCode>>>>>;

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

impl Api {
    /// `GET /v1/assets/{bucketId}`.
    pub async fn assets(&self, bucket_id: &str) -> Result<AssetList, Error> {
        self.get_json("list assets", &routes::assets(bucket_id))
            .await
    }

    /// `DELETE /v1/assets/{bucketId}/{objectKey}`.
    pub async fn delete_asset(&self, bucket_id: &str, object_key: &str) -> Result<(), Error> {
        let path = routes::asset(bucket_id, object_key);
        self.delete_value("delete asset", &path).await?;
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
            "{}?name={}&schemaId={}&schemaVersion={}",
            routes::assets(bucket_id),
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
        self.send_json(
            "start upload",
            Request::post(&self.url(routes::UPLOADS)),
            req,
        )
        .await
    }

    /// `GET /v1/uploads/{uploadId}`: the session and the parts stored so far.
    pub async fn upload_session(&self, upload_id: &str) -> Result<UploadSession, Error> {
        self.get_json("upload session", &routes::upload(upload_id))
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
        let url = self.url(&routes::upload_part(upload_id, part_number));
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
        let url = self.url(&routes::upload_complete(upload_id));
        let timeout_ms = (i64::from(REQUEST_TIMEOUT_MS) + (size / 20_000) as i64)
            .min(i64::from(i32::MAX)) as i32;
        let builder = self.authed(Request::post(&url));
        let resp = self.send_within(what, builder, None, timeout_ms).await?;
        Self::parse(what, resp).await
    }

    /// `DELETE /v1/uploads/{uploadId}`: aborts the upload and releases its reservation.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<(), Error> {
        let path = routes::upload(upload_id);
        self.delete_value("abort upload", &path).await?;
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
}
