//! One document bucket in memory: core's `BucketQueue` over JSON values (the confirmed
//! document and this browser's queued writes, with every transition) and when the bucket was
//! last checked against the server; what it shows ([`DocSnapshot`]), its mirrored record and
//! the errors a read or a conditional write answers from it. No network, no IndexedDB.

use super::BucketRef;
use crate::mirror::DocRecord;
use monodit_core::api::Contract;
use monodit_core::queue::{BucketQueue, QueuedWrite};
use monodit_core::{Error, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// The answer of [`Engine::doc_get`] and [`Engine::doc_set`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocSnapshot {
    /// What the bucket shows now (`null` when never written).
    pub value: Value,
    /// The last server-confirmed version (0 = never written).
    pub version: u64,
    /// Whether writes are still unconfirmed.
    pub pending: bool,
    /// The read token (`core::outbox::View::head`): which write the value is, so a
    /// conditional write computed on it can be admitted on top of exactly that write.
    pub head: Option<f64>,
}

/// The answer of [`Engine::doc_get_js`](super::Engine::doc_get_js): a [`DocSnapshot`] whose
/// value is already a JS value (for a widget's port).
pub struct DocView {
    /// What the bucket shows now, as a JS value shared with earlier answers: post it, never
    /// change it.
    pub value: JsValue,
    /// The last server-confirmed version (0 = never written).
    pub version: u64,
    /// Whether writes are still unconfirmed.
    pub pending: bool,
    /// The read token (see [`DocSnapshot::head`]).
    pub head: Option<f64>,
}

/// A queued write of a document bucket (core's queue over JSON values).
pub(super) type Pending = QueuedWrite<Value>;

/// A document bucket in memory: core's queue (the confirmed document and this browser's
/// queued writes, with every transition) and when it was last checked against the server.
#[derive(Debug, Clone, Default)]
pub(super) struct Doc {
    pub(super) q: BucketQueue<Value>,
    pub(super) last_checked: f64,
    /// The visible value as last handed to a widget's `get`, and its JS form: reused while
    /// the bucket shows an equal value (comparing is far cheaper than encoding it again).
    shown_js: Option<(Value, JsValue)>,
}

/// Values up to this JSON length keep their JS form for the next `get` (larger ones would
/// hold twice their size in memory).
const SHOWN_JS_MAX: usize = 64 * 1024;

impl Doc {
    pub(super) fn with_queue(q: BucketQueue<Value>) -> Doc {
        Doc {
            q,
            ..Doc::default()
        }
    }

    pub(super) fn from_record(rec: DocRecord) -> Doc {
        Doc::with_queue(BucketQueue {
            contract: rec.contract,
            confirmed_value: rec.confirmed_value,
            confirmed_version: rec.confirmed_version,
            known: rec.confirmed_known,
            settled: rec.settled,
            ..BucketQueue::default()
        })
    }

    /// The visible value as a JS value, for a widget's `get` only: the same JS object is
    /// handed out again while the value is unchanged, so it must only be posted (cloned by the
    /// port), never given to code that could change it.
    pub(super) fn visible_js(&mut self) -> Result<JsValue, Error> {
        let visible = self.q.visible();
        if let Some((v, js)) = &self.shown_js {
            if v == visible {
                return Ok(js.clone());
            }
        }
        let text = serde_json::to_string(visible)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding a value: {e}")))?;
        let js = js_sys::JSON::parse(&text).map_err(|e| crate::errors::from_js(&e))?;
        self.shown_js = (text.len() <= SHOWN_JS_MAX).then(|| (visible.clone(), js.clone()));
        Ok(js)
    }

    pub(super) fn snapshot(&self) -> DocSnapshot {
        DocSnapshot {
            value: self.q.visible().clone(),
            version: self.q.confirmed_version,
            pending: !self.q.pending.is_empty(),
            head: self.q.view().head(),
        }
    }

    /// CONFLICT for a write made on `expected`: `detail` is what this browser shows now
    /// (`{value, version, head}`: the queued writes included, so a caller that merges into it
    /// and writes again on that `head` loses none of them).
    pub(super) fn conflict(&self, expected: u64) -> Error {
        let version = self.q.confirmed_version;
        Error::new(
            ErrorCode::Conflict,
            format!(
                "the document is at version {version}, not {expected}: a newer write came first"
            ),
        )
        .with_detail(serde_json::json!({
            "value": self.q.visible(),
            "version": version,
            "head": self.q.view().head(),
        }))
    }

    pub(super) fn record(&self, bucket_id: &str) -> DocRecord {
        DocRecord {
            bucket_id: bucket_id.to_string(),
            contract: self.q.contract.clone(),
            confirmed_value: self.q.confirmed_value.clone(),
            confirmed_version: self.q.confirmed_version,
            value: self.q.visible().clone(),
            pending: !self.q.pending.is_empty(),
            confirmed_known: self.q.known,
            settled: self.q.settled,
        }
    }
}

pub(super) fn check_contract(b: &BucketRef, have: Option<&Contract>) -> Result<(), Error> {
    match have {
        // Core's one INCOMPATIBLE_BUCKET, with the server's detail shape.
        Some(c) => monodit_core::buckets::check_compatible(c, &b.contract),
        None => Ok(()),
    }
}
