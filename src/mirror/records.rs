//! The records the mirror stores, one type per object store (see the module docs of
//! `mirror`): storage types only; reading and writing them is `mirror`'s. Each is written
//! with serde and read back by hand ([`FromJson`]); a record of the wrong shape fails whole
//! (the mirror treats it as absent), and a field older records lack gets its default.

use crate::decode::read::{FromJson, Obj, Res};
use monodit_core::api::{AssetInfo, Contract};
use monodit_core::outbox::{Condition, Settled};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

/// A mirrored document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocRecord {
    /// The bucket id (key).
    pub bucket_id: String,
    /// The contract the bucket is known to have (None until first read or write).
    pub contract: Option<Contract>,
    /// Last value the server confirmed (`null` when never written).
    pub confirmed_value: Value,
    /// Version of `confirmed_value` (0 when never written).
    pub confirmed_version: u64,
    /// What the bucket shows now: the newest pending write, else the confirmed value.
    pub value: Value,
    /// Whether writes are pending in the outbox.
    pub pending: bool,
    /// False when the confirmed part is a placeholder: writes were made before the server's
    /// value was ever read, so a read must still ask the server. Older records lack the
    /// field and were always read from the server first.
    pub confirmed_known: bool,
    /// The newest write of this browser the server confirmed (which queued writes it
    /// supersedes or rebases, see `monodit_core::outbox`). Older records lack it: none.
    pub settled: Settled,
}

impl FromJson for DocRecord {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(DocRecord {
            bucket_id: o.req("bucketId")?,
            contract: o.opt("contract")?,
            confirmed_value: o.req("confirmedValue")?,
            confirmed_version: o.req("confirmedVersion")?,
            value: o.req("value")?,
            pending: o.req("pending")?,
            confirmed_known: o.opt("confirmedKnown")?.unwrap_or(true),
            settled: o.or_default("settled")?,
        })
    }
}

/// A durable, unconfirmed write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRecord {
    /// Client-generated id the server dedupes retries with (key).
    pub mutation_id: String,
    /// The bucket written.
    pub bucket_id: String,
    /// Ordering across writes (creation order).
    pub seq: f64,
    /// The value to store.
    pub value: Value,
    /// The contract to write with.
    pub contract: Contract,
    /// Epoch ms when the write was made.
    pub created_at: f64,
    /// The bucket version the write was made on (older records lack it: they are sent on
    /// the version the mirror knows when they are loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
    /// Plain `set()` or conditional (`ifVersion` / `update()`).
    pub condition: Condition,
    /// A conditional write's read token: the `seq` of the write its value was computed on
    /// (`core::outbox::WriteFacts::after`); none when computed on the confirmed document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<f64>,
    /// The mutation id of a PUT that carried this write and whose outcome is unknown
    /// (`core::queue::QueuedWrite::sent_as`): whichever tab sends next repeats that PUT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_as: Option<String>,
}

impl FromJson for OutboxRecord {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(OutboxRecord {
            mutation_id: o.req("mutationId")?,
            bucket_id: o.req("bucketId")?,
            seq: o.req("seq")?,
            value: o.req("value")?,
            contract: o.req("contract")?,
            created_at: o.req("createdAt")?,
            base_version: o.opt("baseVersion")?,
            condition: o.or_default("condition")?,
            after: o.opt("after")?,
            sent_as: o.opt("sentAs")?,
        })
    }
}

/// A mirrored asset list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    /// The bucket id (key).
    pub bucket_id: String,
    /// The bucket's change counter when listed.
    pub version: u64,
    /// The assets.
    pub assets: Vec<AssetInfo>,
}

impl FromJson for AssetRecord {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(AssetRecord {
            bucket_id: o.req("bucketId")?,
            version: o.req("version")?,
            assets: o.req("assets")?,
        })
    }
}

/// A resumable upload in progress (see [`crate::uploads`]): enough to find it again when the
/// same file is uploaded to the same bucket after a reload of the host page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadRecord {
    /// Bucket, name, size, last-modified time and type of the file (key; see
    /// [`UploadRecord::fingerprint`]).
    pub fingerprint: String,
    /// The idempotency key the upload session was created with.
    pub idempotency_key: String,
    /// The server's upload id, once the session exists.
    pub upload_id: Option<String>,
    /// The asset bucket.
    pub bucket_id: String,
    /// The file's name.
    pub name: String,
    /// The file's size in bytes.
    pub size: f64,
    /// The file's `lastModified` (epoch ms).
    pub last_modified: f64,
    /// The file's MIME type (may be empty).
    pub content_type: String,
    /// Epoch ms when the upload started.
    pub created_at: f64,
}

impl FromJson for UploadRecord {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(UploadRecord {
            fingerprint: o.req("fingerprint")?,
            idempotency_key: o.req("idempotencyKey")?,
            upload_id: o.opt("uploadId")?,
            bucket_id: o.req("bucketId")?,
            name: o.req("name")?,
            size: o.req("size")?,
            last_modified: o.req("lastModified")?,
            content_type: o.req("contentType")?,
            created_at: o.req("createdAt")?,
        })
    }
}

impl UploadRecord {
    /// The key of a file's pending upload to a bucket: the same file picked again (same
    /// name, size, modification time and type) to the same bucket finds the same record.
    pub fn fingerprint(
        bucket_id: &str,
        name: &str,
        size: f64,
        last_modified: f64,
        content_type: &str,
    ) -> String {
        serde_json::json!([bucket_id, name, size, last_modified, content_type]).to_string()
    }
}

/// One `ctx.cache` entry, with its value as a structured-cloneable JS value.
#[derive(Debug, Clone)]
pub struct CacheRecord {
    /// Owning widget instance.
    pub instance_id: String,
    /// The key.
    pub key: String,
    /// The value (any structured-cloneable value, Blobs included).
    pub value: JsValue,
    /// Estimated bytes (what the per-instance cap counts).
    pub size: f64,
    /// Epoch ms after which the entry is gone; None = no expiry.
    pub expires_at: Option<f64>,
    /// Epoch ms of the last read or write (least recently used is evicted first).
    pub last_used: f64,
}

impl CacheRecord {
    pub(super) fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), v);
        };
        set("instanceId", &JsValue::from_str(&self.instance_id));
        set("key", &JsValue::from_str(&self.key));
        set("value", &self.value);
        set("size", &JsValue::from_f64(self.size));
        set(
            "expiresAt",
            &self
                .expires_at
                .map(JsValue::from_f64)
                .unwrap_or(JsValue::NULL),
        );
        set("lastUsed", &JsValue::from_f64(self.last_used));
        o.into()
    }

    /// Reads a stored entry; anything of the wrong shape is None (a miss).
    pub(super) fn from_js(v: &JsValue) -> Option<CacheRecord> {
        let get = |k: &str| js_sys::Reflect::get(v, &JsValue::from_str(k)).ok();
        if !v.is_object() {
            return None;
        }
        Some(CacheRecord {
            instance_id: get("instanceId")?.as_string()?,
            key: get("key")?.as_string()?,
            value: get("value")?,
            size: get("size")?
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)?,
            expires_at: get("expiresAt").and_then(|e| e.as_f64()),
            last_used: get("lastUsed")?.as_f64()?,
        })
    }

    /// The IndexedDB key of this entry.
    pub fn js_key(instance_id: &str, key: &str) -> JsValue {
        let a = js_sys::Array::new();
        a.push(&JsValue::from_str(instance_id));
        a.push(&JsValue::from_str(key));
        a.into()
    }
}
