//! `ctx.assets.upload` on the wire: what makes an upload safe to retry and able to resume.
//!
//! - **Readable first.** The blob is probed with a one-byte read before anything is sent, and
//!   again after a failed send: a file the browser can no longer read (deleted or changed on
//!   disk after it was picked, access refused) rejects `FILE_UNREADABLE`, never `NETWORK`,
//!   which stays "the backend could not be reached".
//! - **Never twice.** Every call carries one idempotency key ([`new_key`]). A request whose
//!   outcome is unknown (no answer, a lost response, a timeout, a 5xx, `CONFLICT` while the
//!   first attempt is still streaming) is repeated with the same key after a backoff; the
//!   server answers a repeat with the asset the key already produced and stores nothing.
//! - **Resumable above a size** ([`crate::http::Api::resumable_upload_bytes`], 16 MiB by
//!   default): `POST /v1/uploads` (the whole size is reserved, so QUOTA_EXCEEDED comes before
//!   any byte is sent), then one `PUT` per part, each a slice of the file (never read whole
//!   into memory), then `complete`. After a failure the session is read again and sending
//!   goes on at the first part the server does not have. A pending upload of a `File` is
//!   remembered in the mirror ([`crate::mirror::UploadRecord`]), so after a reload of the host
//!   page uploading the same file to the same bucket resumes; the record goes once the upload
//!   completes or is given up for good (that record is `resume.rs`'s: this file does the
//!   network, `resume.rs` the IndexedDB).
//! - **Bounded.** A single request is tried [`MAX_ATTEMPTS`] times; a resumable upload gives
//!   up after [`MAX_ATTEMPTS`] failed requests in a row without a part stored in between (its
//!   record stays: the next upload of the same file resumes).
//! - **Progress.** `onProgress(loaded, total)` never goes backwards: a request that starts a
//!   body over is reported from the highest figure already shown, and a resumed upload starts
//!   at the bytes the server already stored.

mod resume;

use crate::http::Api;
use crate::mirror::{Mirror, UploadRecord};
use monodit_core::api::{
    upload_part_count, upload_part_len, AssetInfo, Contract, NewUpload, UploadSession,
};
use monodit_core::{Error, ErrorCode};
use resume::Resume;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// Default of [`crate::http::Api::resumable_upload_bytes`]: files larger than this use the
/// resumable protocol (`Host.create({resumableUploadBytes})` changes it).
pub const DEFAULT_RESUMABLE_UPLOAD_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// Failed requests in a row, without progress in between, before an upload gives up with the
/// last error (the backoff between them grows from [`RETRY_BASE_MS`] to [`RETRY_MAX_MS`]).
pub const MAX_ATTEMPTS: u32 = 6;
/// First retry delay (ms).
pub const RETRY_BASE_MS: f64 = 250.0;
/// Longest retry delay (ms).
pub const RETRY_MAX_MS: f64 = 8_000.0;

/// While `complete` runs, the last progress figure is repeated this often (ms), well inside
/// the widget's [`crate::protocol::UPLOAD_IDLE_TIMEOUT_MS`].
const HEARTBEAT_MS: i32 = 15_000;

/// A fresh idempotency key: 1-128 characters of `[A-Za-z0-9_-]` (a UUID's hex and dashes).
pub fn new_key() -> String {
    let from_crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .and_then(|c| {
            let f = js_sys::Reflect::get(&c, &"randomUUID".into()).ok()?;
            let f: js_sys::Function = f.dyn_into().ok()?;
            f.call0(&c).ok()?.as_string()
        });
    from_crypto.unwrap_or_else(|| {
        let r = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        format!("u-{:x}-{:08x}{:08x}", js_sys::Date::now() as u64, r(), r())
    })
}

/// Whether a failed request may have been applied, or may succeed later: such a request is
/// repeated with the same key. CONFLICT on an upload means "the first attempt with this key
/// is still streaming" (or, on `complete`, "parts are missing": the session is read again).
pub fn outcome_unknown(e: &Error) -> bool {
    e.code.is_transient() || e.code == ErrorCode::Conflict
}

/// Delay before retry `attempt` (1-based): exponential, capped, with jitter.
pub fn retry_delay_ms(attempt: u32) -> f64 {
    let exp = RETRY_BASE_MS * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let capped = exp.min(RETRY_MAX_MS);
    capped / 2.0 + js_sys::Math::random() * capped / 2.0
}

/// Reads the byte of `blob` at `start`: FILE_UNREADABLE when the browser refuses (the file
/// behind it was deleted or changed since it was picked, or access is denied).
pub async fn probe(blob: &web_sys::Blob, start: f64) -> Result<(), Error> {
    let unreadable = |e: wasm_bindgen::JsValue| {
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"));
        Error::new(
            ErrorCode::FileUnreadable,
            format!("the browser could not read the file ({why}); pick it again"),
        )
    };
    let size = blob.size();
    // An empty File is read whole: Chromium reports a file deleted before anything asked for
    // its size as 0 bytes, and only reading the File itself (not a slice) then fails.
    let piece = if size == 0.0 {
        blob.clone()
    } else {
        // max/min, not `clamp`: clamp's NaN assertion formats f64s with Debug, which would
        // keep core's float formatting in the host (size > 0 here, so the bounds are ordered).
        let start = start.max(0.0).min(size - 1.0);
        blob.slice_with_f64_and_f64(start, start + 1.0)
            .map_err(unreadable)?
    };
    wasm_bindgen_futures::JsFuture::from(piece.array_buffer())
        .await
        .map(|_| ())
        .map_err(unreadable)
}

/// After a failed send: a blob that cannot be read any more explains the failure better than
/// the transport's NETWORK.
pub async fn explain_failure(blob: &web_sys::Blob, start: f64, err: Error) -> Error {
    if err.code == ErrorCode::Network || err.code == ErrorCode::Timeout {
        if let Err(unreadable) = probe(blob, start).await {
            return unreadable;
        }
    }
    err
}

/// A progress callback that never reports less than it already did.
#[derive(Clone)]
pub struct Progress {
    shown: Rc<Cell<f64>>,
    total: f64,
    report: Rc<dyn Fn(f64, f64)>,
}

impl Progress {
    /// Reports to `report` for a body of `total` bytes.
    pub fn new(total: f64, report: Rc<dyn Fn(f64, f64)>) -> Progress {
        Progress {
            shown: Rc::new(Cell::new(-1.0)),
            total,
            report,
        }
    }

    /// Reports the highest figure shown again (a sign of life while the server works).
    pub fn repeat(&self) {
        let shown = self.shown.get();
        if shown >= 0.0 {
            (self.report)(shown, self.total);
        }
    }

    /// Reports `loaded` bytes (clamped to `0..=total`) unless a higher figure was shown.
    pub fn report(&self, loaded: f64) {
        let loaded = if loaded.is_finite() {
            // Not `clamp` (its assertion formats f64s; see `probe`).
            loaded.max(0.0).min(self.total)
        } else {
            0.0
        };
        if loaded > self.shown.get() {
            self.shown.set(loaded);
            (self.report)(loaded, self.total);
        }
    }
}

/// Counts failed requests in a row and waits before the next one; the error once there were
/// too many, or when retrying cannot help.
struct Retries {
    failures: u32,
}

impl Retries {
    async fn after(&mut self, e: Error) -> Result<(), Error> {
        self.failures += 1;
        if !outcome_unknown(&e) || self.failures >= MAX_ATTEMPTS {
            return Err(e);
        }
        crate::web::sleep(retry_delay_ms(self.failures) as i32).await;
        Ok(())
    }
}

/// What to upload, and where.
pub struct UploadTarget<'a> {
    /// The asset bucket.
    pub bucket_id: &'a str,
    /// Its contract.
    pub contract: &'a Contract,
    /// The bytes (a `File` or any `Blob`).
    pub blob: &'a web_sys::Blob,
    /// The name to record.
    pub name: &'a str,
}

/// Uploads `blob` to an asset bucket: probes it, then sends it in one request or, above
/// [`Api::resumable_upload_bytes`], resumably (see the module docs).
pub async fn upload(
    api: &Api,
    mirror: &Mirror,
    target: &UploadTarget<'_>,
    on_progress: Rc<dyn Fn(f64, f64)>,
) -> Result<AssetInfo, Error> {
    probe(target.blob, 0.0).await?;
    let progress = Progress::new(target.blob.size(), on_progress);
    if target.blob.size() > api.resumable_upload_bytes() {
        upload_resumable(api, mirror, target, &progress).await
    } else {
        upload_single(api, target, &progress).await
    }
}

/// One request (`POST /v1/assets/{bucketId}`), repeated with one key while its outcome is
/// unknown.
pub async fn upload_single(
    api: &Api,
    target: &UploadTarget<'_>,
    progress: &Progress,
) -> Result<AssetInfo, Error> {
    let key = new_key();
    let mut retries = Retries { failures: 0 };
    loop {
        let p = progress.clone();
        let sent = api
            .upload_asset_keyed(
                target.bucket_id,
                target.contract,
                target.blob,
                target.name,
                Some(&key),
                move |l, _| p.report(l),
            )
            .await;
        match sent {
            Ok(info) => {
                progress.report(target.blob.size());
                return Ok(info);
            }
            Err(e) => {
                retries
                    .after(explain_failure(target.blob, 0.0, e).await)
                    .await?
            }
        }
    }
}

/// How a resumable session ended.
enum SessionEnd {
    Done(AssetInfo),
    /// The server no longer knows the session (expired or aborted): start a new one.
    Gone,
}

/// The resumable protocol, with the mirror record that lets a reload resume it.
async fn upload_resumable(
    api: &Api,
    mirror: &Mirror,
    target: &UploadTarget<'_>,
    progress: &Progress,
) -> Result<AssetInfo, Error> {
    let resume = Resume::new(mirror, target);
    let file = target.blob.dyn_ref::<web_sys::File>();
    let mut known = resume.load().await;
    // A session the server forgot is started again once, with a new key.
    for _ in 0..2 {
        let mut rec = known.take().unwrap_or_else(|| UploadRecord {
            fingerprint: resume.key().unwrap_or_default(),
            idempotency_key: new_key(),
            upload_id: None,
            bucket_id: target.bucket_id.to_string(),
            name: target.name.to_string(),
            size: target.blob.size(),
            last_modified: file.map(|f| f.last_modified()).unwrap_or(0.0),
            content_type: target.blob.type_(),
            created_at: js_sys::Date::now(),
        });
        // Written before the session exists: a reload during `POST /v1/uploads` asks again
        // with the same key and finds the session instead of reserving the size twice.
        resume.save(&rec).await;
        match run_session(api, &resume, target, &mut rec, progress).await {
            Ok(SessionEnd::Done(info)) => {
                resume.forget().await;
                progress.report(target.blob.size());
                return Ok(info);
            }
            Ok(SessionEnd::Gone) => resume.forget().await,
            // Kept: uploading the same file again resumes where this stopped.
            Err(e) if outcome_unknown(&e) => return Err(e),
            Err(e) => {
                // Given up for good (quota, contract, an unreadable file, ...): release the
                // reservation now rather than at the session's expiry.
                if let Some(id) = &rec.upload_id {
                    let _ = api.abort_upload(id).await;
                }
                resume.forget().await;
                return Err(e);
            }
        }
    }
    Err(Error::new(
        ErrorCode::Internal,
        "upload: the server dropped the upload session twice",
    ))
}

fn warn(msg: &str) {
    web_sys::console::warn_1(&msg.into());
}

/// One session: found again or created, then the missing parts, then `complete`; after a
/// failure the session is read again and sending goes on at its first missing part.
async fn run_session(
    api: &Api,
    resume: &Resume<'_>,
    target: &UploadTarget<'_>,
    rec: &mut UploadRecord,
    progress: &Progress,
) -> Result<SessionEnd, Error> {
    let blob = target.blob;
    let size = blob.size() as u64;
    let mut retries = Retries { failures: 0 };
    loop {
        let session = match &rec.upload_id {
            Some(id) => api.upload_session(id).await,
            None => {
                let content_type = blob.type_();
                api.create_upload(&NewUpload {
                    bucket_id: target.bucket_id.to_string(),
                    name: target.name.to_string(),
                    content_type,
                    size,
                    schema_id: target.contract.schema_id.clone(),
                    schema_version: target.contract.schema_version,
                    idempotency_key: rec.idempotency_key.clone(),
                })
                .await
            }
        };
        let session: UploadSession = match session {
            Ok(s) => s,
            Err(e) if e.code == ErrorCode::NotFound && rec.upload_id.is_some() => {
                return Ok(SessionEnd::Gone)
            }
            Err(e) => {
                retries.after(e).await?;
                continue;
            }
        };
        if session.size != size || session.bucket_id != target.bucket_id {
            // A record that names another upload (cannot happen unless the mirror was edited).
            return Ok(SessionEnd::Gone);
        }
        if rec.upload_id.as_deref() != Some(session.upload_id.as_str()) {
            rec.upload_id = Some(session.upload_id.clone());
            resume.save(rec).await;
        }
        if let Some(done) = session.completed {
            return Ok(SessionEnd::Done(done));
        }
        let id = session.upload_id.as_str();
        let part_size = session.part_size;
        let mut stored: f64 = session.parts.iter().map(|p| p.size as f64).sum();
        progress.report(stored);
        let mut failed = None;
        for n in 1..=upload_part_count(size, part_size) {
            if session.parts.iter().any(|p| p.part_number == n) {
                continue;
            }
            let start = u64::from(n - 1) * part_size;
            let len = upload_part_len(size, part_size, n).unwrap_or(0);
            let (from, to) = (start as f64, (start + len) as f64);
            probe(blob, from).await?;
            let part = blob
                .slice_with_f64_and_f64(from, to)
                .map_err(|e| Error::new(ErrorCode::Internal, format!("upload: slice ({e:?})")))?;
            let (p, base) = (progress.clone(), stored);
            match api
                .put_upload_part(id, n, &part, move |l, _| p.report(base + l))
                .await
            {
                Ok(_) => {
                    stored += len as f64;
                    progress.report(stored);
                    retries.failures = 0;
                }
                Err(e) => {
                    failed = Some(explain_failure(blob, from, e).await);
                    break;
                }
            }
        }
        let outcome = match failed {
            Some(e) => Err(e),
            None => {
                // The server joins the parts before it answers, which for a large file takes
                // a while without upload progress: repeat the last figure meanwhile, so the
                // widget's call (it times out after a minute without progress) keeps waiting.
                let complete = api.complete_upload(id, size);
                let heartbeat = async {
                    loop {
                        crate::web::sleep(HEARTBEAT_MS).await;
                        progress.repeat();
                    }
                };
                futures::pin_mut!(complete);
                futures::pin_mut!(heartbeat);
                match futures::future::select(complete, heartbeat).await {
                    futures::future::Either::Left((answer, _)) => answer,
                    futures::future::Either::Right(_) => Err(Error::new(
                        ErrorCode::Internal,
                        "upload: the completion wait ended early",
                    )),
                }
            }
        };
        match outcome {
            Ok(info) => return Ok(SessionEnd::Done(info)),
            Err(e) if e.code == ErrorCode::NotFound => return Ok(SessionEnd::Gone),
            Err(e) => retries.after(e).await?,
        }
    }
}
