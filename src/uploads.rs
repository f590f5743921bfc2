//! `ctx.assets.upload` on the wire: what makes an upload safe to retry and able to resume.
//!
//! - **Readable first.** The blob is probed with a one-byte read before anything is sent, and
//!   again after a failed send: a file the browser can no longer read (deleted or changed on
//!   disk after it was picked, access refused) rejects `FILE_UNREADABLE`, never `NETWORK`,
//!   which stays "the backend could not be reached".
//! - **Progress.** `onProgress(loaded, total)` never goes backwards.

use crate::http::Api;
use monodit_core::api::{AssetInfo, Contract};
use monodit_core::{Error, ErrorCode};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// Reads the first byte of `blob[start..]`: FILE_UNREADABLE when the browser refuses (the
/// file behind it was deleted or changed since it was picked, or access is denied).
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
        let start = start.clamp(0.0, size - 1.0);
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

    /// Reports `loaded` bytes (clamped to `0..=total`) unless a higher figure was shown.
    pub fn report(&self, loaded: f64) {
        let loaded = if loaded.is_finite() {
            loaded.clamp(0.0, self.total)
        } else {
            0.0
        };
        if loaded > self.shown.get() {
            self.shown.set(loaded);
            (self.report)(loaded, self.total);
        }
    }
}

/// Uploads `blob` to an asset bucket: probes it, then sends it (see the module docs).
pub async fn upload(
    api: &Api,
    bucket_id: &str,
    contract: &Contract,
    blob: &web_sys::Blob,
    name: &str,
    on_progress: Rc<dyn Fn(f64, f64)>,
) -> Result<AssetInfo, Error> {
    probe(blob, 0.0).await?;
    let progress = Progress::new(blob.size(), on_progress);
    let p = progress.clone();
    match api
        .upload_asset(bucket_id, contract, blob, name, move |l, _| p.report(l))
        .await
    {
        Ok(info) => {
            progress.report(blob.size());
            Ok(info)
        }
        Err(e) => Err(explain_failure(blob, 0.0, e).await),
    }
}
