//! `ctx.cache`: per-instance, browser-only storage for data such as response snapshots or
//! favicon caches (README, "Limits").
//!
//! - Never sent to the server and never counted in quota: entries live only in the user's
//!   mirror database ([`crate::mirror::STORE_CACHE`]), keyed by `[instanceId, key]`, so one
//!   instance never sees another's entries and one account never sees another's.
//! - Values are anything the structured clone algorithm accepts (objects, arrays, strings,
//!   numbers, Dates, Maps, ArrayBuffers, typed arrays, Blobs and Files); a value it refuses
//!   (functions, DOM nodes) is INVALID_ARGUMENT, and so is one nested deeper than
//!   [`MAX_DEPTH`] levels (a cyclic one included), as the port's decoder refuses it.
//! - `ttl_ms`: an entry older than its TTL reads as missing and is removed lazily.
//! - Size cap: [`CACHE_CAP_BYTES`] (5 MB) per instance, estimated per value (Blob/ArrayBuffer
//!   bytes, strings at 2 bytes per UTF-16 unit, small fixed costs for the rest; one estimate
//!   with the port's decoder, `crate::decode::size`). A `set` that
//!   would exceed it evicts the least recently used entries (writes are stored with the
//!   entry; reads are tracked in memory, so reading never rewrites a stored Blob) until it fits; a single value larger than the cap is PAYLOAD_TOO_LARGE. 5 MB holds
//!   hundreds of response snapshots or thousands of favicons while keeping a dashboard with
//!   dozens of widgets well inside browser storage budgets.

use crate::decode::size::{clone_size, Oversize};
use crate::mirror::{CacheRecord, Mirror};
use crate::protocol::MAX_DEPTH;
use crate::web::now;
use monodit_core::{Error, ErrorCode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Per-instance cap on the estimated bytes of all entries.
pub const CACHE_CAP_BYTES: f64 = 5.0 * 1024.0 * 1024.0;

/// The `ctx.cache` engine of one host (all instances; calls name the instance).
pub struct Cache {
    mirror: Rc<Mirror>,
    /// Serialises writes so two concurrent `set`s cannot both slip under the cap.
    lock: futures::lock::Mutex<()>,
    /// Reads since the entry was last written: kept in memory so a read never rewrites the
    /// stored value (a Blob or buffer) just to move its timestamp. After a reload, recency
    /// falls back to the stored write times.
    recency: RefCell<HashMap<(String, String), f64>>,
}

/// Core's bound (1 KiB of UTF-8), checked again here whatever the caller decoded.
fn check_key(key: &str) -> Result<(), Error> {
    monodit_core::limits::check_cache_key(key)
}

fn is_expired(r: &CacheRecord, t: f64) -> bool {
    r.expires_at.map(|e| e <= t).unwrap_or(false)
}

/// Estimated stored bytes of a structured-cloneable value: the estimate the port's decoder
/// applies to `cache.set` too (`crate::decode::size`); infinite for a value nested deeper
/// than [`MAX_DEPTH`], which [`Cache::set`] refuses.
pub fn estimate_size(v: &JsValue) -> f64 {
    clone_size(v, f64::INFINITY).unwrap_or(f64::INFINITY)
}

impl Cache {
    /// A cache over a mirror (the engine's: [`crate::sync::Engine::cache`]).
    pub fn new(mirror: Rc<Mirror>) -> Cache {
        Cache {
            mirror,
            lock: futures::lock::Mutex::new(()),
            recency: RefCell::new(HashMap::new()),
        }
    }

    /// The value, or `undefined` when missing or expired. Marks the entry as recently used.
    pub async fn get(&self, instance_id: &str, key: &str) -> Result<JsValue, Error> {
        check_key(key)?;
        let Some(rec) = self.mirror.cache_get(instance_id, key).await else {
            return Ok(JsValue::UNDEFINED);
        };
        let t = now();
        let id = (instance_id.to_string(), key.to_string());
        if is_expired(&rec, t) {
            let _guard = self.lock.lock().await;
            self.recency.borrow_mut().remove(&id);
            self.mirror
                .cache_write(instance_id, &[], &[key.to_string()])
                .await?;
            return Ok(JsValue::UNDEFINED);
        }
        self.recency.borrow_mut().insert(id, t);
        Ok(rec.value)
    }

    /// When the entry was last read or written.
    fn last_used(&self, r: &CacheRecord) -> f64 {
        let id = (r.instance_id.clone(), r.key.clone());
        let read = self.recency.borrow().get(&id).copied().unwrap_or(0.0);
        r.last_used.max(read)
    }

    /// Stores a value, optionally expiring `ttl_ms` milliseconds from now; evicts the least
    /// recently used entries of the instance if the cap would be exceeded.
    pub async fn set(
        &self,
        instance_id: &str,
        key: &str,
        value: JsValue,
        ttl_ms: Option<f64>,
    ) -> Result<(), Error> {
        check_key(key)?;
        if let Some(ttl) = ttl_ms {
            if !ttl.is_finite() || ttl <= 0.0 {
                return Err(Error::invalid(format!(
                    "ttlMs must be a positive number (got {})",
                    crate::decode::number_text(ttl)
                )));
            }
        }
        if value.is_undefined() || value.is_function() {
            return Err(Error::invalid(
                "cache values must be structured-cloneable (not undefined or a function)",
            ));
        }
        // The walk stops at the cap, so a huge value is not measured to its end.
        let size = match clone_size(&value, CACHE_CAP_BYTES) {
            Ok(size) => size,
            Err(Oversize::Bytes(seen)) => {
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    // Integers: formatting an f64 keeps core's float formatting in the host.
                    format!(
                        "cache value of ~{} bytes or more exceeds the per-instance cap of {}",
                        seen as u64, CACHE_CAP_BYTES as u64
                    ),
                ));
            }
            Err(Oversize::Depth) => {
                return Err(Error::invalid(format!(
                    "cache values are nested at most {MAX_DEPTH} deep"
                )))
            }
        };
        let _guard = self.lock.lock().await;
        let t = now();
        let mut entries = self.mirror.cache_entries(instance_id).await;
        let mut evict: Vec<String> = entries
            .iter()
            .filter(|r| is_expired(r, t) && r.key != key)
            .map(|r| r.key.clone())
            .collect();
        entries.retain(|r| !is_expired(r, t) && r.key != key);
        entries.sort_by(|a, b| self.last_used(a).total_cmp(&self.last_used(b)));
        let mut used: f64 = entries.iter().map(|r| r.size).sum();
        for r in &entries {
            if used + size <= CACHE_CAP_BYTES {
                break;
            }
            used -= r.size;
            evict.push(r.key.clone());
        }
        let rec = CacheRecord {
            instance_id: instance_id.to_string(),
            key: key.to_string(),
            value,
            size,
            expires_at: ttl_ms.map(|ttl| t + ttl),
            last_used: t,
        };
        self.mirror.cache_write(instance_id, &[rec], &evict).await?;
        self.forget(instance_id, &evict);
        Ok(())
    }

    /// Drops the in-memory read times of removed entries.
    fn forget(&self, instance_id: &str, keys: &[String]) {
        let mut recency = self.recency.borrow_mut();
        for k in keys {
            recency.remove(&(instance_id.to_string(), k.clone()));
        }
    }

    /// Removes an entry; answers whether it existed (and had not expired).
    pub async fn delete(&self, instance_id: &str, key: &str) -> Result<bool, Error> {
        check_key(key)?;
        let _guard = self.lock.lock().await;
        let existed = self
            .mirror
            .cache_get(instance_id, key)
            .await
            .map(|r| !is_expired(&r, now()))
            .unwrap_or(false);
        self.mirror
            .cache_write(instance_id, &[], &[key.to_string()])
            .await?;
        self.forget(instance_id, &[key.to_string()]);
        Ok(existed)
    }

    /// The instance's unexpired keys, sorted.
    pub async fn keys(&self, instance_id: &str) -> Result<Vec<String>, Error> {
        let t = now();
        let mut keys: Vec<String> = self
            .mirror
            .cache_entries(instance_id)
            .await
            .into_iter()
            .filter(|r| !is_expired(r, t))
            .map(|r| r.key)
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Removes every entry of the instance.
    pub async fn clear(&self, instance_id: &str) -> Result<(), Error> {
        let _guard = self.lock.lock().await;
        let keys: Vec<String> = self
            .mirror
            .cache_entries(instance_id)
            .await
            .into_iter()
            .map(|r| r.key)
            .collect();
        self.mirror.cache_write(instance_id, &[], &keys).await?;
        self.forget(instance_id, &keys);
        Ok(())
    }

    /// Estimated bytes the instance uses (unexpired entries).
    pub async fn used_bytes(&self, instance_id: &str) -> f64 {
        let t = now();
        self.mirror
            .cache_entries(instance_id)
            .await
            .iter()
            .filter(|r| !is_expired(r, t))
            .map(|r| r.size)
            .sum()
    }
}
