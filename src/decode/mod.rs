//! Host-side decoding of port messages: every inbound message becomes a typed
//! [`Request`](crate::protocol::Request) or an error, without trusting any field and without
//! copying oversized input into Rust first. The wire types themselves are in
//! [`crate::protocol`], which re-exports the functions here under their old paths
//! (`protocol::parse_request`, `protocol::js_to_json`, ...).
//!
//! - this file: requests (`{id, op, args}`) and the typed arguments of every op;
//! - [`json`]: structured-clone values to JSON, with a byte budget and a depth limit;
//! - [`size`]: the one size estimate of structured-cloneable values (also used by
//!   [`crate::cache`]);
//! - [`reply`]: the host's outbound messages (replies and events);
//! - [`read`]: typed reading of JSON from the backend, IndexedDB and other tabs, with
//!   [`wire`] for core's wire types.

mod json;
pub(crate) mod read;
mod reply;
pub(crate) mod size;
mod wire;

#[cfg(test)]
#[path = "read_tests.rs"]
mod read_tests;

pub use json::{from_js_value, js_to_json, to_js_value};
pub use reply::{error_reply, event, ok_reply};
pub use size::estimate_size;

use crate::protocol::*;
use js_sys::{Array, JsString, Object, Reflect};
use monodit_core::api::{
    CollectionItem, CollectionOp, MAX_COLLECTION_BATCH, MAX_DOCUMENT_BYTES, MAX_ITEM_BYTES,
};
use monodit_core::{kv, limits, Error, ErrorCode};
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};

/// A kv key's length bound before it is copied (UTF-16 units; the byte rule is core's).
const KV_KEY_MAX: u32 = kv::MAX_KEY_BYTES as u32;

/// `args.key` checked by core's kv rules here, so a bad key never costs a round trip.
fn kv_key(args: &JsValue) -> Result<String, Error> {
    let key = required_string(args, "key", KV_KEY_MAX)?;
    kv::validate_key(&key)?;
    Ok(key)
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    // Reflect.get on a structured-clone result cannot run widget code (no getters or
    // proxies survive cloning), so reading fields is safe.
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid(msg)
}

fn too_large(what: &str, limit: u64) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} exceeds {limit} bytes"),
    )
    .with_detail(serde_json::json!({ "limit": limit }))
}

/// A string field of at most `max` UTF-16 units; the length is checked before the
/// string is copied out of JS.
fn string_field(args: &JsValue, key: &str, max: u32) -> Result<Option<String>, Error> {
    let v = get(args, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let Some(s) = v.dyn_ref::<JsString>() else {
        return Err(invalid(format!("args.{key} must be a string")));
    };
    if s.length() > max {
        return Err(invalid(format!(
            "args.{key} is longer than {max} characters"
        )));
    }
    Ok(s.as_string())
}

fn required_string(args: &JsValue, key: &str, max: u32) -> Result<String, Error> {
    match string_field(args, key, max)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid(format!("args.{key} is required"))),
    }
}

/// A `ctx.cache` key: core's one bound (1 KiB of UTF-8), after a cheap refusal of longer JS
/// strings unread (no string has more UTF-16 units than UTF-8 bytes).
fn cache_key(args: &JsValue) -> Result<String, Error> {
    let key = required_string(args, "key", limits::MAX_CACHE_KEY_BYTES as u32)?;
    limits::check_cache_key(&key)?;
    Ok(key)
}

fn id_number(v: &JsValue) -> Option<f64> {
    let n = v.as_f64()?;
    (n.is_finite() && n.fract() == 0.0 && (0.0..=MAX_ID).contains(&n)).then_some(n)
}

fn subscription(args: &JsValue) -> Result<f64, Error> {
    id_number(&get(args, "subscription"))
        .ok_or_else(|| invalid("args.subscription must be an integer id in 0..=4294967295"))
}

fn string_list(args: &JsValue, key: &str) -> Result<Vec<String>, Error> {
    let v = get(args, key);
    if !Array::is_array(&v) {
        return Err(invalid(format!("args.{key} must be an array of strings")));
    }
    let arr: Array = v.unchecked_into();
    if arr.length() as usize > MAX_COLLECTION_BATCH {
        return Err(invalid(format!(
            "args.{key} has more than {MAX_COLLECTION_BATCH} entries"
        )));
    }
    let mut out = Vec::with_capacity(arr.length() as usize);
    for (i, item) in arr.iter().enumerate() {
        match item.dyn_ref::<JsString>() {
            Some(s) if s.length() > 0 && s.length() <= MAX_KEY_LEN => out.push(String::from(s)),
            _ => {
                return Err(invalid(format!(
                    "args.{key}[{i}] must be a non-empty string of at most {MAX_KEY_LEN} characters"
                )))
            }
        }
    }
    Ok(out)
}

fn binding(args: &JsValue) -> Result<BindingKey, Error> {
    string_field(args, "binding", MAX_KEY_LEN)
}

/// `x` as JavaScript writes it (`Number.prototype.toString`: `1.5`, `NaN`, `Infinity`), for
/// error messages. Rust's `Display` for f64 would keep core's float formatting (about 16 KB
/// before gzip) in the host build for a few messages.
pub(crate) fn number_text(x: f64) -> String {
    js_sys::Number::from(x)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}

/// Decodes one inbound port message. `Err((Some(id), e))` must be answered with an
/// error reply; `Err((None, e))` has no usable id and is dropped (there is nobody to
/// answer).
pub fn parse_request(data: &JsValue) -> Result<Request, (Option<RequestId>, Error)> {
    if !data.is_object() || Array::is_array(data) {
        return Err((None, invalid("a request must be an object {id, op, args}")));
    }
    let Some(id) = id_number(&get(data, "id")) else {
        return Err((
            None,
            invalid("request id must be an integer in 0..=4294967295"),
        ));
    };
    let op_v = get(data, "op");
    let op = match op_v.dyn_ref::<JsString>() {
        Some(s) if s.length() <= MAX_OP_LEN => {
            let name = String::from(s);
            Op::parse(&name).ok_or_else(|| invalid(format!("unknown op {name:?}")))
        }
        Some(_) => Err(invalid("unknown op (too long)")),
        None => Err(invalid("op must be a string")),
    }
    .map_err(|e| (Some(id), e))?;
    let args = get(data, "args");
    let args = if args.is_undefined() || args.is_null() {
        Object::new().into()
    } else if args.is_object() && !Array::is_array(&args) {
        args
    } else {
        return Err((Some(id), invalid("args must be an object")));
    };
    let call = parse_call(op, &args).map_err(|e| (Some(id), e))?;
    Ok(Request { id, call })
}

fn parse_call(op: Op, args: &JsValue) -> Result<Call, Error> {
    Ok(match op {
        Op::StoreGet => Call::StoreGet {
            namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
            binding: binding(args)?,
        },
        Op::StoreSet => {
            let value = get(args, "value");
            if value.is_undefined() {
                return Err(invalid("args.value is required (use null to clear)"));
            }
            let if_version = get(args, "ifVersion");
            let if_version = if if_version.is_undefined() || if_version.is_null() {
                None
            } else {
                match if_version.as_f64() {
                    Some(n) if n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&n) => {
                        Some(n as u64)
                    }
                    _ => {
                        return Err(invalid(
                            "args.ifVersion must be a version number (an integer ≥ 0)",
                        ))
                    }
                }
            };
            let if_head = get(args, "ifHead");
            let if_head = if if_head.is_undefined() {
                None
            } else if if_head.is_null() {
                Some(None)
            } else {
                match if_head.as_f64() {
                    Some(n) if if_version.is_some() && n.is_finite() && n > 0.0 => Some(Some(n)),
                    _ => {
                        return Err(invalid(
                            "args.ifHead must be the head of a store.get answer (a positive number or null), with ifVersion",
                        ))
                    }
                }
            };
            Call::StoreSet {
                value: js_to_json(&value, MAX_DOCUMENT_BYTES, "document")?,
                namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
                binding: binding(args)?,
                if_version,
                if_head,
            }
        }
        Op::StoreSubscribe => Call::StoreSubscribe {
            subscription: subscription(args)?,
            namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
            binding: binding(args)?,
        },
        Op::StoreUnsubscribe | Op::AssetsUnsubscribe => Call::Unsubscribe {
            subscription: subscription(args)?,
        },
        Op::AssetsUpload => {
            let file = get(args, "file");
            let Some(blob) = file.dyn_ref::<web_sys::Blob>() else {
                return Err(invalid("args.file must be a Blob or File"));
            };
            let name = match string_field(args, "name", MAX_NAME_LEN)? {
                Some(n) if !n.is_empty() => n,
                _ => file
                    .dyn_ref::<web_sys::File>()
                    .map(|f| f.name())
                    .filter(|n| !n.is_empty() && n.len() <= MAX_NAME_LEN as usize)
                    .unwrap_or_else(|| "file".to_owned()),
            };
            Call::AssetsUpload {
                file: blob.clone(),
                name,
                binding: binding(args)?,
                namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
            }
        }
        Op::AssetsList => Call::AssetsList {
            binding: binding(args)?,
            namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
        },
        Op::AssetsDelete => Call::AssetsDelete {
            object_key: required_string(args, "objectKey", MAX_KEY_LEN)?,
            binding: binding(args)?,
            namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
        },
        Op::AssetsSubscribe => Call::AssetsSubscribe {
            subscription: subscription(args)?,
            binding: binding(args)?,
            namespace: string_field(args, "namespace", MAX_NAMESPACE_LEN)?,
        },
        Op::CacheGet => Call::CacheGet {
            key: cache_key(args)?,
        },
        Op::CacheSet => {
            let key = cache_key(args)?;
            let value = get(args, "value");
            estimate_size(&value, MAX_CACHE_VALUE_BYTES)?;
            let ttl = get(args, "ttlMs");
            let ttl_ms = if ttl.is_undefined() || ttl.is_null() {
                None
            } else {
                match ttl.as_f64() {
                    Some(t) if t.is_finite() && t > 0.0 => Some(t),
                    _ => return Err(invalid("args.ttlMs must be a positive number")),
                }
            };
            Call::CacheSet { key, value, ttl_ms }
        }
        Op::CacheDelete => Call::CacheDelete {
            key: cache_key(args)?,
        },
        Op::CacheKeys => Call::CacheKeys,
        Op::CacheClear => Call::CacheClear,
        Op::Config => Call::Config,
        Op::KvGet => Call::KvGet { key: kv_key(args)? },
        Op::KvSet => {
            let value = get(args, "value");
            if value.is_undefined() {
                return Err(invalid("args.value is required (use kv.delete to remove)"));
            }
            Call::KvSet {
                key: kv_key(args)?,
                value: js_to_json(&value, kv::MAX_VALUE_BYTES as u64, "kv value")?,
            }
        }
        Op::KvDelete => Call::KvDelete { key: kv_key(args)? },
        Op::KvList => {
            let prefix = string_field(args, "prefix", KV_KEY_MAX)?.unwrap_or_default();
            kv::validate_prefix(&prefix)?;
            Call::KvList { prefix }
        }
        Op::Log => {
            let level = match string_field(args, "level", 8)?.as_deref() {
                Some("debug") => LogLevel::Debug,
                Some("info") => LogLevel::Info,
                Some("warn") => LogLevel::Warn,
                Some("error") => LogLevel::Error,
                _ => return Err(invalid("args.level must be debug, info, warn or error")),
            };
            // A log line is never refused for its size (that would lose it silently on
            // the widget side): long messages are cut, oversized or non-JSON data is
            // replaced by a note. Only absurd inputs (> 1 MiB message) are errors.
            let raw = get(args, "message");
            let mut message = match raw.dyn_ref::<JsString>() {
                Some(_) => string_field(args, "message", 1 << 20)?.unwrap_or_default(),
                None if raw.is_undefined() => String::new(),
                // `ctx.log.info({...})`: shown as its JSON.
                None => js_to_json(&raw, MAX_LOG_DATA_BYTES, "log message")
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "(unprintable message)".to_owned()),
            };
            if message.chars().count() > MAX_LOG_MESSAGE as usize {
                message = message.chars().take(MAX_LOG_MESSAGE as usize).collect();
                message.push('…');
            }
            let data = get(args, "data");
            let data = if data.is_undefined() {
                None
            } else {
                Some(
                    js_to_json(&data, MAX_LOG_DATA_BYTES, "log data").unwrap_or_else(|e| {
                        Value::String(format!("(data omitted: {})", e.message))
                    }),
                )
            };
            Call::Log {
                level,
                message,
                data,
            }
        }
        Op::Storage(method) => Call::Storage {
            collection: required_string(args, "collection", MAX_KEY_LEN)?,
            op: collection_op(method, args)?,
        },
    })
}

fn collection_op(method: CollectionMethod, args: &JsValue) -> Result<CollectionOp, Error> {
    let id = || required_string(args, "id", MAX_KEY_LEN);
    Ok(match method {
        CollectionMethod::Get => CollectionOp::Get { id: id()? },
        CollectionMethod::Delete => CollectionOp::Delete { id: id()? },
        CollectionMethod::Exists => CollectionOp::Exists { id: id()? },
        CollectionMethod::Put => {
            let id = id()?;
            let data = get(args, "data");
            if data.is_undefined() {
                return Err(invalid("args.data is required"));
            }
            CollectionOp::Put {
                id,
                data: js_to_json(&data, MAX_ITEM_BYTES, "item data")?,
            }
        }
        CollectionMethod::GetMany => CollectionOp::GetMany {
            ids: string_list(args, "ids")?,
        },
        CollectionMethod::DeleteMany => CollectionOp::DeleteMany {
            ids: string_list(args, "ids")?,
        },
        CollectionMethod::PutMany => {
            let items = get(args, "items");
            if !Array::is_array(&items) {
                return Err(invalid("args.items must be an array of {id, data}"));
            }
            let arr: Array = items.unchecked_into();
            if arr.length() as usize > MAX_COLLECTION_BATCH {
                return Err(invalid(format!(
                    "args.items has more than {MAX_COLLECTION_BATCH} entries"
                )));
            }
            let mut out = Vec::with_capacity(arr.length() as usize);
            for (i, item) in arr.iter().enumerate() {
                if !item.is_object() {
                    return Err(invalid(format!("args.items[{i}] must be {{id, data}}")));
                }
                let id = required_string(&item, "id", MAX_KEY_LEN)
                    .map_err(|_| invalid(format!("args.items[{i}].id must be a string")))?;
                let data = get(&item, "data");
                if data.is_undefined() {
                    return Err(invalid(format!("args.items[{i}].data is required")));
                }
                let data = js_to_json(&data, MAX_ITEM_BYTES, "item data")?;
                out.push(CollectionItem { id, data });
            }
            CollectionOp::PutMany { items: out }
        }
        CollectionMethod::Query => {
            let options = get(args, "options");
            let options = if options.is_undefined() || options.is_null() {
                Value::Object(Map::new())
            } else {
                js_to_json(&options, 64 * 1024, "query options")?
            };
            // Core's reader: every problem with its path (`$.limit`), like the server's.
            CollectionOp::Query(monodit_core::query::QueryOptions::from_json(&options)?)
        }
        CollectionMethod::Count => {
            let w = get(args, "where");
            let where_ = if w.is_undefined() || w.is_null() {
                None
            } else {
                let w = js_to_json(&w, 64 * 1024, "where clause")?;
                Some(
                    read::FromJson::from_json(w)
                        .map_err(|e| invalid(format!("where clause: {e}")))?,
                )
            };
            CollectionOp::Count { where_ }
        }
    })
}
