//! The one size estimate of a structured-cloneable value. The decoder refuses a `cache.set`
//! value whose estimate passes [`crate::protocol::MAX_CACHE_VALUE_BYTES`] before it reaches the cache, and
//! [`crate::cache`] records the same estimate with every entry and evicts against its
//! per-instance cap: one walk, so the two cannot disagree about a value.
//!
//! Costs, in bytes: a string 8 + 2 per UTF-16 unit (its length is read without copying it); a
//! Blob or File, an ArrayBuffer or a view of one 16 + its byte size; a Date 16; an array or a
//! Set 16 + its items; a Map or any other object 16 + 16 per entry + the entries' keys and
//! values; anything else (numbers, booleans, null) 8. These are the costs the cache recorded
//! before the two estimates were merged, so entries an earlier build stored stay comparable.

use super::{invalid, too_large};
use crate::protocol::MAX_DEPTH;
use js_sys::{Array, JsString, Object, Reflect};
use monodit_core::Error;
use wasm_bindgen::{JsCast, JsValue};

/// Why a value was not measured to its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Oversize {
    /// The estimate passed the limit: the bytes counted until then.
    Bytes(f64),
    /// Nested deeper than [`MAX_DEPTH`] (also where a cyclic value ends).
    Depth,
}

/// The estimate of `v`, stopping as soon as it passes `limit` or [`MAX_DEPTH`] (so a huge or
/// cyclic value costs at most `limit / 8` steps).
pub(crate) fn clone_size(v: &JsValue, limit: f64) -> Result<f64, Oversize> {
    let mut count = Count { used: 0.0, limit };
    walk(v, 0, &mut count)?;
    Ok(count.used)
}

/// A rough size of a structured-cloneable value (for the cache), stopping as soon as
/// `limit` is passed: PAYLOAD_TOO_LARGE above it, INVALID_ARGUMENT when nested deeper than
/// [`MAX_DEPTH`]. Blobs and buffers count their byte size.
pub fn estimate_size(v: &JsValue, limit: u64) -> Result<u64, Error> {
    clone_size(v, limit as f64)
        .map(|n| n as u64)
        .map_err(|e| match e {
            Oversize::Bytes(_) => too_large("cache value", limit),
            Oversize::Depth => invalid(format!("cache value is nested deeper than {MAX_DEPTH}")),
        })
}

struct Count {
    used: f64,
    limit: f64,
}

impl Count {
    fn add(&mut self, n: f64) -> Result<(), Oversize> {
        self.used += n;
        if self.used > self.limit {
            Err(Oversize::Bytes(self.used))
        } else {
            Ok(())
        }
    }
}

fn walk(v: &JsValue, depth: u32, count: &mut Count) -> Result<(), Oversize> {
    if depth > MAX_DEPTH {
        return Err(Oversize::Depth);
    }
    if let Some(s) = v.dyn_ref::<JsString>() {
        return count.add(8.0 + 2.0 * f64::from(s.length()));
    }
    if !v.is_object() {
        return count.add(8.0);
    }
    if let Some(b) = v.dyn_ref::<web_sys::Blob>() {
        return count.add(16.0 + b.size());
    }
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return count.add(16.0 + f64::from(b.byte_length()));
    }
    if js_sys::ArrayBuffer::is_view(v) {
        let n = Reflect::get(v, &JsValue::from_str("byteLength"))
            .ok()
            .and_then(|n| n.as_f64())
            .unwrap_or(0.0);
        return count.add(16.0 + n);
    }
    if v.is_instance_of::<js_sys::Date>() {
        return count.add(16.0);
    }
    count.add(16.0)?;
    if Array::is_array(v) {
        for item in v.unchecked_ref::<Array>().iter() {
            walk(&item, depth + 1, count)?;
        }
        return Ok(());
    }
    if let Some(m) = v.dyn_ref::<js_sys::Map>() {
        let mut result = Ok(());
        m.for_each(&mut |val, key| {
            if result.is_ok() {
                result = count
                    .add(16.0)
                    .and_then(|_| walk(&key, depth + 1, count))
                    .and_then(|_| walk(&val, depth + 1, count));
            }
        });
        return result;
    }
    if let Some(s) = v.dyn_ref::<js_sys::Set>() {
        let mut result = Ok(());
        s.for_each(&mut |val, _, _| {
            if result.is_ok() {
                result = walk(&val, depth + 1, count);
            }
        });
        return result;
    }
    for pair in Object::entries(v.unchecked_ref::<Object>()).iter() {
        let pair: Array = pair.unchecked_into();
        count.add(16.0)?;
        walk(&pair.get(0), depth + 1, count)?;
        walk(&pair.get(1), depth + 1, count)?;
    }
    Ok(())
}
