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
//!
//! Split by route family: this file holds the client itself (requests, timeouts, errors)
//! and the account, topology, instance and dev routes; `documents.rs`, `assets.rs` (uploads
//! included) and `plugins.rs` (plugin data: collections, kv) add the rest to [`Api`].

mod assets;
mod documents;
mod plugins;

use crate::decode::read::{self, FromJson};
use gloo_net::http::{Request, RequestBuilder, Response};
use monodit_core::api::{
    BucketInfo, DeletedBucket, DevFaults, Document, InstanceInfo, InstanceRegistration, Me,
    NewUser, Plan, SetFaults, SetPlan, Usage,
};
use monodit_core::buckets::Backend;
use monodit_core::routes;
use monodit_core::{Error, ErrorCode};
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

/// Encodes a query-string value (paths come from core's `routes`).
fn enc(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

fn network_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::Network,
        format!("{what}: the backend could not be reached ({err})"),
    )
}

/// Turns an error answer into the server's own error when it sent one.
fn error_from_body(status: u16, body: &str) -> Error {
    if let Ok(err) = read::read::<Error>(body) {
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
fn parse_text<T: FromJson>(what: &str, text: &str) -> Result<T, Error> {
    typed(what, read::parse(text).map_err(|e| unexpected(what, e))?)
}

/// Reads a parsed answer as `T`. The async helpers below return a `Value` and only this
/// small function is compiled once per answer type, not a state machine per type.
fn typed<T: FromJson>(what: &str, v: Value) -> Result<T, Error> {
    T::from_json(v).map_err(|e| unexpected(what, e))
}

fn unexpected(what: &str, e: String) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("{what}: unexpected answer from the backend ({e})"),
    )
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
    async fn answer(what: &str, resp: Response) -> Result<Value, Error> {
        let status = resp.status();
        let text = Self::read_text(what, &resp).await?;
        if !(200..300).contains(&status) {
            return Err(error_from_body(status, &text));
        }
        read::parse(&text).map_err(|e| unexpected(what, e))
    }

    /// [`Api::answer`] read as `T`.
    async fn parse<T: FromJson>(what: &str, resp: Response) -> Result<T, Error> {
        typed(what, Self::answer(what, resp).await?)
    }

    async fn get_value(&self, what: &str, path: &str) -> Result<Value, Error> {
        let resp = self
            .send(what, self.authed(Request::get(&self.url(path))), None)
            .await?;
        Self::answer(what, resp).await
    }

    async fn get_json<T: FromJson>(&self, what: &str, path: &str) -> Result<T, Error> {
        typed(what, self.get_value(what, path).await?)
    }

    async fn send_value(
        &self,
        what: &str,
        builder: RequestBuilder,
        body: String,
    ) -> Result<Value, Error> {
        let resp = self.send(what, self.authed(builder), Some(body)).await?;
        Self::answer(what, resp).await
    }

    async fn send_json<B: Serialize + ?Sized, T: FromJson>(
        &self,
        what: &str,
        builder: RequestBuilder,
        body: &B,
    ) -> Result<T, Error> {
        let body = serde_json::to_string(body)
            .map_err(|e| Error::invalid(format!("{what}: cannot encode the body ({e})")))?;
        typed(what, self.send_value(what, builder, body).await?)
    }

    async fn delete_value(&self, what: &str, path: &str) -> Result<Value, Error> {
        let resp = self
            .send(what, self.authed(Request::delete(&self.url(path))), None)
            .await?;
        Self::answer(what, resp).await
    }

    async fn delete_json<T: FromJson>(&self, what: &str, path: &str) -> Result<T, Error> {
        typed(what, self.delete_value(what, path).await?)
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<Me, Error> {
        self.get_json("me", routes::ME).await
    }

    /// `GET /v1/usage`.
    pub async fn usage(&self) -> Result<Usage, Error> {
        self.get_json("usage", routes::USAGE).await
    }

    /// `GET /v1/buckets`: the topology.
    pub async fn buckets(&self) -> Result<Vec<BucketInfo>, Error> {
        self.get_json("buckets", routes::BUCKETS).await
    }

    /// `DELETE /v1/buckets/{backend}/{bucketId}`.
    pub async fn delete_bucket(
        &self,
        backend: Backend,
        bucket_id: &str,
    ) -> Result<DeletedBucket, Error> {
        let path = routes::bucket(backend, bucket_id);
        self.delete_json("delete bucket", &path).await
    }

    /// `PUT /v1/instances/{instanceId}`.
    pub async fn register_instance(
        &self,
        instance_id: &str,
        reg: &InstanceRegistration,
    ) -> Result<InstanceInfo, Error> {
        let url = self.url(&routes::instance(instance_id));
        self.send_json("register instance", Request::put(&url), reg)
            .await
    }

    /// `GET /v1/instances`.
    pub async fn instances(&self) -> Result<Vec<InstanceInfo>, Error> {
        self.get_json("instances", routes::INSTANCES).await
    }

    /// `DELETE /v1/instances/{instanceId}`.
    pub async fn delete_instance(&self, instance_id: &str) -> Result<(), Error> {
        let path = routes::instance(instance_id);
        self.delete_value("delete instance", &path).await?;
        Ok(())
    }

    /// `PUT /v1/dev/plan` (servers started with `--dev` only).
    pub async fn dev_set_plan(&self, plan: Plan, addons: u32) -> Result<Me, Error> {
        self.dev_set_plan_limit(plan, addons, None).await
    }

    /// `PUT /v1/dev/faults` (dev and tests only): the caller's next `document_put_errors`
    /// document writes answer a real 500 INTERNAL from the server.
    pub async fn dev_set_faults(&self, document_put_errors: u32) -> Result<SetFaults, Error> {
        self.send_json(
            "set faults",
            Request::put(&self.url(routes::DEV_FAULTS)),
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
            Request::put(&self.url(routes::DEV_FAULTS)),
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
            Request::put(&self.url(routes::DEV_FAULTS)),
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
            Request::put(&self.url(routes::DEV_PLAN)),
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
        let url = api.url(routes::DEV_USERS);
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
