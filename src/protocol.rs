//! The port protocol: wire shapes and limits shared by the widget and the host, kept apart
//! from the logic that uses them (as Comlink keeps `protocol.ts`).
//!
//! ```text
//! window (host → iframe, once per iframe document, targetOrigin "*", port2 transferred):
//!   {type: "monodit:connect", version: 1, port}
//! window (iframe → parent, optional, carries nothing): {type: "monodit:hello", version: 1}
//!   asks the host for a fresh handshake when connect() started after the iframe's `load`.
//! port, host → widget, first message:
//!   {type: "monodit:init", version, instanceId, kind, config, collections: [name...],
//!    bindings: [{key, backend}]}
//! port, widget → host:   {id, op, args}
//! port, host → widget:   {id, ok: true, value} | {id, ok: false, error: {code, message, detail?}}
//! port, host → widget:   {event: "store", subscription, value, meta: {kind, version, pending, bucket}}
//!                        {event: "assets", subscription, kind, assets}
//!                        {event: "config", config}
//!                        {event: "progress", id, loaded, total}   (upload of request `id`)
//! ```
//!
//! Ops and their `args` (every field is checked on the host; see `host_side`):
//!
//! | op | args | value |
//! |---|---|---|
//! | `store.get` | `{namespace?, binding?}` | `{value, version, pending, bucket, head}` (`head`: the read token `update()` writes with, a number or `null`) |
//! | `store.set` | `{value, namespace?, binding?, ifVersion?, ifHead?}` | `{value, version, pending, bucket}` once confirmed (a `{event:"queued", id}` first, once the write is in the outbox) |
//! | `store.subscribe` | `{subscription, namespace?, binding?}` | `{bucket}` |
//! | `assets.upload` | `{file: Blob, name?, binding?, namespace?}` | `AssetInfo` (`url`) |
//! | `assets.list` | `{binding?, namespace?}` | `[AssetInfo]` |
//! | `assets.delete` | `{objectKey, binding?, namespace?}` | `true` |
//! | `assets.subscribe` | `{subscription, binding?, namespace?}` | `{bucket}` |
//! | `store.unsubscribe`, `assets.unsubscribe` | `{subscription}` | `true` |
//! | `cache.get` / `cache.delete` | `{key}` | value or `undefined` / `true` |
//! | `cache.set` | `{key, value, ttlMs?}` | `true` |
//! | `cache.keys` / `cache.clear` | `{}` | `[key]` / `true` |
//! | `storage.<method>` | `{collection, id?, ids?, data?, items?, options?, where?}` | seed 003 result |
//! | `kv.get` | `{key}` | value, or `null` when unset |
//! | `kv.set` | `{key, value}` | `true` |
//! | `kv.delete` | `{key}` | whether the key existed |
//! | `kv.list` | `{prefix?}` | `[{key, value}]` in key order |
//! | `log` | `{level, message, data?}` | `true` (the host's event log and console) |
//! | `config` | `{}` | `{instanceId, config}` |
//!
//! Request ids are chosen by the widget (integers `0..=MAX_ID`); subscription ids too, so a
//! widget can re-subscribe with the same id after a re-handshake.

/// Protocol version carried by the handshake and the init message. Bumped on any
/// incompatible change; both sides refuse another version with UNSUPPORTED_PROTOCOL.
pub const PROTOCOL_VERSION: u32 = 1;
/// `type` of the window message that hands the widget its port.
pub const HANDSHAKE_TYPE: &str = "monodit:connect";
/// `type` of the window message a late widget sends to ask for a handshake.
pub const HELLO_TYPE: &str = "monodit:hello";
/// `type` of the first port message (instance, config, declared names).
pub const INIT_TYPE: &str = "monodit:init";

/// Default per-call timeout (ms) on the widget side.
pub const TIMEOUT_MS: u32 = 20_000;
/// Uploads may legitimately take long; their timeout (ms) restarts on every progress event.
pub const UPLOAD_IDLE_TIMEOUT_MS: u32 = 60_000;
/// How long `connect()` waits for the handshake (ms) before NOT_EMBEDDED.
pub const HANDSHAKE_TIMEOUT_MS: u32 = 5_000;

/// Largest request id the host accepts (ids are integers; larger or fractional ids have no
/// usable id and are dropped).
pub const MAX_ID: f64 = 4_294_967_295.0;
/// Longest op name; anything longer is not an op (checked before comparing).
pub const MAX_OP_LEN: u32 = 32;
/// Longest namespace / bucket id, in UTF-16 units.
pub const MAX_NAMESPACE_LEN: u32 = 200;
/// Longest cache key, collection item id, asset object key or binding key.
pub const MAX_KEY_LEN: u32 = 512;
/// Longest asset file name.
pub const MAX_NAME_LEN: u32 = 255;
/// Largest cache value estimate (bytes); the cache engine enforces its own per-instance cap.
pub const MAX_CACHE_VALUE_BYTES: u64 = 8 * 1024 * 1024;
/// Most requests one port may have in flight; beyond it the host answers RATE_LIMITED.
pub const MAX_IN_FLIGHT: usize = 64;
/// Refused messages (malformed, over [`MAX_IN_FLIGHT`], dropped `ctx.log` lines) one port may
/// send per second before its requests are answered RATE_LIMITED unread; at four times this
/// the host closes the port (a flood must not stall the page; normal traffic is never refused).
pub const MAX_REFUSED_PER_SECOND: u32 = 500;
/// Most live subscriptions per port.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// Deepest JSON nesting accepted from a widget (also stops cyclic structured clones).
pub const MAX_DEPTH: u32 = 64;

/// Every op a widget may call. Unknown op strings are answered with INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `store.get`
    StoreGet,
    /// `store.set`
    StoreSet,
    /// `store.subscribe`
    StoreSubscribe,
    /// `store.unsubscribe`
    StoreUnsubscribe,
    /// `assets.upload`
    AssetsUpload,
    /// `assets.list`
    AssetsList,
    /// `assets.delete`
    AssetsDelete,
    /// `assets.subscribe`
    AssetsSubscribe,
    /// `assets.unsubscribe`
    AssetsUnsubscribe,
    /// `cache.get`
    CacheGet,
    /// `cache.set`
    CacheSet,
    /// `cache.delete`
    CacheDelete,
    /// `cache.keys`
    CacheKeys,
    /// `cache.clear`
    CacheClear,
    /// `storage.<method>` (seed 003 StorageCollection)
    Storage(CollectionMethod),
    /// `config`
    Config,
    /// `kv.get`
    KvGet,
    /// `kv.set`
    KvSet,
    /// `kv.delete`
    KvDelete,
    /// `kv.list`
    KvList,
    /// `log`
    Log,
}

/// The methods of seed 003's `StorageCollection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionMethod {
    /// `get(id)`
    Get,
    /// `put(id, data)`
    Put,
    /// `delete(id)`
    Delete,
    /// `exists(id)`
    Exists,
    /// `getMany(ids)`
    GetMany,
    /// `putMany(items)`
    PutMany,
    /// `deleteMany(ids)`
    DeleteMany,
    /// `query(options)`
    Query,
    /// `count(where?)`
    Count,
}

impl CollectionMethod {
    /// Every method, for building collection facades.
    pub const ALL: [CollectionMethod; 9] = [
        CollectionMethod::Get,
        CollectionMethod::Put,
        CollectionMethod::Delete,
        CollectionMethod::Exists,
        CollectionMethod::GetMany,
        CollectionMethod::PutMany,
        CollectionMethod::DeleteMany,
        CollectionMethod::Query,
        CollectionMethod::Count,
    ];

    /// The JS method name (and the HTTP op name).
    pub const fn as_str(self) -> &'static str {
        match self {
            CollectionMethod::Get => "get",
            CollectionMethod::Put => "put",
            CollectionMethod::Delete => "delete",
            CollectionMethod::Exists => "exists",
            CollectionMethod::GetMany => "getMany",
            CollectionMethod::PutMany => "putMany",
            CollectionMethod::DeleteMany => "deleteMany",
            CollectionMethod::Query => "query",
            CollectionMethod::Count => "count",
        }
    }
}

impl Op {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::StoreGet => "store.get",
            Op::StoreSet => "store.set",
            Op::StoreSubscribe => "store.subscribe",
            Op::StoreUnsubscribe => "store.unsubscribe",
            Op::AssetsUpload => "assets.upload",
            Op::AssetsList => "assets.list",
            Op::AssetsDelete => "assets.delete",
            Op::AssetsSubscribe => "assets.subscribe",
            Op::AssetsUnsubscribe => "assets.unsubscribe",
            Op::CacheGet => "cache.get",
            Op::CacheSet => "cache.set",
            Op::CacheDelete => "cache.delete",
            Op::CacheKeys => "cache.keys",
            Op::CacheClear => "cache.clear",
            Op::Storage(CollectionMethod::Get) => "storage.get",
            Op::Storage(CollectionMethod::Put) => "storage.put",
            Op::Storage(CollectionMethod::Delete) => "storage.delete",
            Op::Storage(CollectionMethod::Exists) => "storage.exists",
            Op::Storage(CollectionMethod::GetMany) => "storage.getMany",
            Op::Storage(CollectionMethod::PutMany) => "storage.putMany",
            Op::Storage(CollectionMethod::DeleteMany) => "storage.deleteMany",
            Op::Storage(CollectionMethod::Query) => "storage.query",
            Op::Storage(CollectionMethod::Count) => "storage.count",
            Op::Config => "config",
            Op::KvGet => "kv.get",
            Op::KvSet => "kv.set",
            Op::KvDelete => "kv.delete",
            Op::KvList => "kv.list",
            Op::Log => "log",
        }
    }

    /// Parses a wire op name.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "store.get" => Op::StoreGet,
            "store.set" => Op::StoreSet,
            "store.subscribe" => Op::StoreSubscribe,
            "store.unsubscribe" => Op::StoreUnsubscribe,
            "assets.upload" => Op::AssetsUpload,
            "assets.list" => Op::AssetsList,
            "assets.delete" => Op::AssetsDelete,
            "assets.subscribe" => Op::AssetsSubscribe,
            "assets.unsubscribe" => Op::AssetsUnsubscribe,
            "cache.get" => Op::CacheGet,
            "cache.set" => Op::CacheSet,
            "cache.delete" => Op::CacheDelete,
            "cache.keys" => Op::CacheKeys,
            "cache.clear" => Op::CacheClear,
            "config" => Op::Config,
            "kv.get" => Op::KvGet,
            "kv.set" => Op::KvSet,
            "kv.delete" => Op::KvDelete,
            "kv.list" => Op::KvList,
            "log" => Op::Log,
            _ => {
                let m = s.strip_prefix("storage.")?;
                Op::Storage(*CollectionMethod::ALL.iter().find(|c| c.as_str() == m)?)
            }
        })
    }
}

#[cfg(feature = "host")]
pub use host_side::*;

/// Host-side decoding: every inbound port message becomes a typed [`Request`] or an error,
/// without trusting any field and without copying oversized input into Rust first.
#[cfg(feature = "host")]
mod host_side {
    use super::*;
    use js_sys::{Array, JsString, Object, Reflect};
    use monodit_core::api::{
        CollectionItem, CollectionOp, MAX_COLLECTION_BATCH, MAX_DOCUMENT_BYTES, MAX_ITEM_BYTES,
    };
    use monodit_core::{kv, Error, ErrorCode};
    use serde_json::{Map, Number, Value};

    /// A kv key's length bound before it is copied (UTF-16 units; the byte rule is core's).
    const KV_KEY_MAX: u32 = kv::MAX_KEY_BYTES as u32;

    /// `args.key` checked by core's kv rules here, so a bad key never costs a round trip.
    fn kv_key(args: &JsValue) -> Result<String, Error> {
        let key = required_string(args, "key", KV_KEY_MAX)?;
        kv::validate_key(&key)?;
        Ok(key)
    }
    use wasm_bindgen::{JsCast, JsValue};

    /// A request id as the widget chose it (an integer, echoed in the reply).
    pub type RequestId = f64;

    /// One decoded, validated request.
    #[derive(Debug)]
    pub struct Request {
        /// Echoed in the reply.
        pub id: RequestId,
        /// The typed call.
        pub call: Call,
    }

    /// Which binding a store/assets call targets: `None` = the manifest's first binding of
    /// that backend.
    pub type BindingKey = Option<String>;

    /// The typed arguments of every op.
    #[derive(Debug)]
    pub enum Call {
        /// `store.get`
        StoreGet {
            /// Explicit namespace.
            namespace: Option<String>,
            /// Binding key.
            binding: BindingKey,
        },
        /// `store.set`
        StoreSet {
            /// The document (≤ MAX_DOCUMENT_BYTES as JSON).
            value: Value,
            /// Explicit namespace.
            namespace: Option<String>,
            /// Binding key.
            binding: BindingKey,
            /// Apply only while the bucket is at this version (CONFLICT otherwise).
            if_version: Option<u64>,
            /// `update()`'s read token (`head` of the `store.get` answer it computed on):
            /// absent, `null`, or a number.
            if_head: Option<Option<f64>>,
        },
        /// `store.subscribe`
        StoreSubscribe {
            /// Widget-chosen subscription id.
            subscription: f64,
            /// Explicit namespace (`null`/absent = the bound bucket, re-bound on config change).
            namespace: Option<String>,
            /// Binding key.
            binding: BindingKey,
        },
        /// `store.unsubscribe` / `assets.unsubscribe`
        Unsubscribe {
            /// Widget-chosen subscription id.
            subscription: f64,
        },
        /// `assets.upload`
        AssetsUpload {
            /// The file, as a structured-clone Blob.
            file: web_sys::Blob,
            /// File name (from `File.name` when absent).
            name: String,
            /// Binding key.
            binding: BindingKey,
            /// Explicit bucket id (dynamic themes; any widget for a compatible or new bucket).
            namespace: Option<String>,
        },
        /// `assets.list`
        AssetsList {
            /// Binding key.
            binding: BindingKey,
            /// Explicit bucket id (dynamic themes; any widget for a compatible or new bucket).
            namespace: Option<String>,
        },
        /// `assets.delete`
        AssetsDelete {
            /// Server object key.
            object_key: String,
            /// Binding key.
            binding: BindingKey,
            /// Explicit bucket id (dynamic themes; any widget for a compatible or new bucket).
            namespace: Option<String>,
        },
        /// `assets.subscribe`
        AssetsSubscribe {
            /// Widget-chosen subscription id.
            subscription: f64,
            /// Binding key.
            binding: BindingKey,
            /// Explicit bucket id (dynamic themes; any widget for a compatible or new bucket).
            namespace: Option<String>,
        },
        /// `cache.get`
        CacheGet {
            /// Key.
            key: String,
        },
        /// `cache.set`
        CacheSet {
            /// Key.
            key: String,
            /// Any structured-cloneable value (size-checked).
            value: JsValue,
            /// Time to live.
            ttl_ms: Option<f64>,
        },
        /// `cache.delete`
        CacheDelete {
            /// Key.
            key: String,
        },
        /// `cache.keys`
        CacheKeys,
        /// `cache.clear`
        CacheClear,
        /// `storage.<method>`
        Storage {
            /// Collection name (checked against the manifest by the router).
            collection: String,
            /// The operation with its typed arguments.
            op: CollectionOp,
        },
        /// `config`
        Config,
        /// `kv.get`
        KvGet {
            /// Key (`settings:theme`).
            key: String,
        },
        /// `kv.set`
        KvSet {
            /// Key.
            key: String,
            /// Any JSON value (≤ `kv::MAX_VALUE_BYTES`).
            value: Value,
        },
        /// `kv.delete`
        KvDelete {
            /// Key.
            key: String,
        },
        /// `kv.list`
        KvList {
            /// Key prefix (`""` = every key).
            prefix: String,
        },
        /// `log`
        Log {
            /// `debug`, `info`, `warn` or `error`.
            level: LogLevel,
            /// The message (cut to [`MAX_LOG_MESSAGE`] characters).
            message: String,
            /// Optional JSON details (≤ [`MAX_LOG_DATA_BYTES`]).
            data: Option<Value>,
        },
    }

    /// Levels of `ctx.log`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum LogLevel {
        /// `ctx.log.debug`
        Debug,
        /// `ctx.log.info`
        Info,
        /// `ctx.log.warn`
        Warn,
        /// `ctx.log.error`
        Error,
    }

    impl LogLevel {
        /// The wire and event spelling.
        pub const fn as_str(self) -> &'static str {
            match self {
                LogLevel::Debug => "debug",
                LogLevel::Info => "info",
                LogLevel::Warn => "warn",
                LogLevel::Error => "error",
            }
        }
    }

    /// Longest `ctx.log` message (UTF-16 units).
    pub const MAX_LOG_MESSAGE: u32 = 4096;
    /// Largest `ctx.log` data (JSON bytes).
    pub const MAX_LOG_DATA_BYTES: u64 = 16 * 1024;

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
                Some(s) if s.length() > 0 && s.length() <= MAX_KEY_LEN => {
                    out.push(String::from(s))
                }
                _ => {
                    return Err(invalid(format!(
                        "args.{key}[{i}] must be a non-empty string of at most {MAX_KEY_LEN} characters"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Converts a structured-clone value into JSON with a byte budget and a depth limit.
    /// Strings are measured before they are copied (a 50 MB string fails at once), shared
    /// or cyclic references cannot loop (depth) or multiply work (budget), and non-JSON
    /// values (Blob, Date, Map, NaN, ...) are refused.
    pub fn js_to_json(v: &JsValue, limit: u64, what: &str) -> Result<Value, Error> {
        let mut budget = limit;
        to_json(v, &mut budget, 0, limit, what)
    }

    fn spend(budget: &mut u64, n: u64, limit: u64, what: &str) -> Result<(), Error> {
        if n > *budget {
            return Err(too_large(what, limit));
        }
        *budget -= n;
        Ok(())
    }

    fn to_json(
        v: &JsValue,
        budget: &mut u64,
        depth: u32,
        limit: u64,
        what: &str,
    ) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("{what} is nested deeper than {MAX_DEPTH}")));
        }
        if v.is_null() {
            spend(budget, 4, limit, what)?;
            return Ok(Value::Null);
        }
        if let Some(b) = v.as_bool() {
            spend(budget, 5, limit, what)?;
            return Ok(Value::Bool(b));
        }
        if let Some(n) = v.as_f64() {
            spend(budget, 8, limit, what)?;
            // JS has one number type; integral values become JSON integers (as
            // JSON.stringify writes them), so `1` stays `1`, not `1.0`.
            if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
                return Ok(Value::Number(Number::from(n as i64)));
            }
            return Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| invalid(format!("{what} contains a non-finite number")));
        }
        if let Some(s) = v.dyn_ref::<JsString>() {
            // UTF-8 needs at least one byte per UTF-16 unit: a lower bound that is safe to
            // check before copying.
            let units = u64::from(s.length());
            spend(budget, units + 2, limit, what)?;
            let s = String::from(s);
            // Charge the real UTF-8 size beyond the lower bound.
            spend(budget, (s.len() as u64).saturating_sub(units), limit, what)?;
            return Ok(Value::String(s));
        }
        if Array::is_array(v) {
            let arr: &Array = v.unchecked_ref();
            spend(budget, 2 + u64::from(arr.length()), limit, what)?;
            let mut out = Vec::with_capacity((arr.length() as usize).min(4096));
            for item in arr.iter() {
                out.push(to_json(&item, budget, depth + 1, limit, what)?);
            }
            return Ok(Value::Array(out));
        }
        if v.is_object() && is_plain_object(v) {
            let keys = Object::keys(v.unchecked_ref::<Object>());
            spend(budget, 2 + u64::from(keys.length()), limit, what)?;
            let mut out = Map::new();
            for key in keys.iter() {
                let Some(k) = key.dyn_ref::<JsString>() else {
                    continue;
                };
                spend(budget, u64::from(k.length()) + 3, limit, what)?;
                let item = Reflect::get(v, &key).unwrap_or(JsValue::UNDEFINED);
                if item.is_undefined() {
                    continue; // JSON.stringify drops undefined members too.
                }
                out.insert(
                    String::from(k),
                    to_json(&item, budget, depth + 1, limit, what)?,
                );
            }
            return Ok(Value::Object(out));
        }
        if v.is_undefined() {
            return Err(invalid(format!("{what} is undefined")));
        }
        Err(invalid(format!(
            "{what} must be JSON (plain objects, arrays, strings, finite numbers, booleans, null)"
        )))
    }

    fn is_plain_object(v: &JsValue) -> bool {
        let proto = Object::get_prototype_of(v);
        proto.is_null() || proto == Object::get_prototype_of(&Object::new())
    }

    /// A rough size of a structured-cloneable value (for the cache), stopping as soon as
    /// `limit` is passed. Blobs and buffers count their byte size.
    pub fn estimate_size(v: &JsValue, limit: u64) -> Result<u64, Error> {
        let mut used = 0u64;
        estimate(v, &mut used, 0, limit)?;
        Ok(used)
    }

    fn estimate(v: &JsValue, used: &mut u64, depth: u32, limit: u64) -> Result<(), Error> {
        let add = |used: &mut u64, n: u64| -> Result<(), Error> {
            *used = used.saturating_add(n);
            if *used > limit {
                Err(too_large("cache value", limit))
            } else {
                Ok(())
            }
        };
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "cache value is nested deeper than {MAX_DEPTH}"
            )));
        }
        if let Some(s) = v.dyn_ref::<JsString>() {
            return add(used, u64::from(s.length()) * 2);
        }
        if let Some(b) = v.dyn_ref::<web_sys::Blob>() {
            return add(used, b.size() as u64);
        }
        if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
            return add(used, u64::from(b.byte_length()));
        }
        if js_sys::ArrayBuffer::is_view(v) {
            let len = Reflect::get(v, &JsValue::from_str("byteLength"))
                .ok()
                .and_then(|l| l.as_f64())
                .unwrap_or(0.0);
            return add(used, len as u64);
        }
        if Array::is_array(v) {
            let arr: &Array = v.unchecked_ref();
            add(used, 8 * u64::from(arr.length()))?;
            for item in arr.iter() {
                estimate(&item, used, depth + 1, limit)?;
            }
            return Ok(());
        }
        if let Some(m) = v.dyn_ref::<js_sys::Map>() {
            add(used, 16 * u64::from(m.size()))?;
            let mut result = Ok(());
            m.for_each(&mut |val, key| {
                if result.is_ok() {
                    result = estimate(&key, used, depth + 1, limit)
                        .and_then(|_| estimate(&val, used, depth + 1, limit));
                }
            });
            return result;
        }
        if v.is_object() && v.dyn_ref::<js_sys::Date>().is_none() {
            let entries = Object::entries(v.unchecked_ref::<Object>());
            add(used, 8 * u64::from(entries.length()))?;
            for pair in entries.iter() {
                let pair: Array = pair.unchecked_into();
                estimate(&pair.get(0), used, depth + 1, limit)?;
                estimate(&pair.get(1), used, depth + 1, limit)?;
            }
            return Ok(());
        }
        add(used, 8)
    }

    fn binding(args: &JsValue) -> Result<BindingKey, Error> {
        string_field(args, "binding", MAX_KEY_LEN)
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
                        Some(n)
                            if n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&n) =>
                        {
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
                key: required_string(args, "key", MAX_KEY_LEN)?,
            },
            Op::CacheSet => {
                let key = required_string(args, "key", MAX_KEY_LEN)?;
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
                key: required_string(args, "key", MAX_KEY_LEN)?,
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
                        serde_json::from_value(w)
                            .map_err(|e| invalid(format!("where clause: {e}")))?,
                    )
                };
                CollectionOp::Count { where_ }
            }
        })
    }

    /// `{id, ok: true, value}`.
    pub fn ok_reply(id: RequestId, value: &JsValue) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &"id".into(), &JsValue::from_f64(id));
        let _ = Reflect::set(&o, &"ok".into(), &JsValue::TRUE);
        let _ = Reflect::set(&o, &"value".into(), value);
        o.into()
    }

    /// `{id, ok: false, error: {code, message, detail?}}`.
    pub fn error_reply(id: RequestId, err: &Error) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &"id".into(), &JsValue::from_f64(id));
        let _ = Reflect::set(&o, &"ok".into(), &JsValue::FALSE);
        let _ = Reflect::set(&o, &"error".into(), &crate::errors::to_wire(err));
        o.into()
    }

    /// An event message `{event, subscription?, ...fields}`.
    pub fn event(kind: &str, subscription: Option<f64>, fields: &[(&str, JsValue)]) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &"event".into(), &JsValue::from_str(kind));
        if let Some(s) = subscription {
            let _ = Reflect::set(&o, &"subscription".into(), &JsValue::from_f64(s));
        }
        for (k, v) in fields {
            let _ = Reflect::set(&o, &JsValue::from_str(k), v);
        }
        o.into()
    }
}
