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
//!                        {event: "queued", id}   (write `id` is in the outbox: its slot is free)
//! batches, both ways:    [message, ...]   (read in order, each as if it came alone)
//! ```
//!
//! A widget may send several requests as one array (the client does for calls made in one
//! task). A port that has sent an array gets the host's messages of one task as one array
//! too; any other port gets them one by one. Batches only save `postMessage`s (three per
//! write in a burst of writes otherwise): every entry is decoded, counted against the
//! in-flight cap and the flood limits, and answered as if it came alone.
//!
//! Ops and their `args` (every field is checked on the host, by `crate::decode`):
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
//! | `storage.<method>` | `{collection, id?, ids?, data?, items?, options?, where?}` | the collection op's result (core `api::CollectionOp`) |
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
/// Longest collection item id, asset object key or binding key, in UTF-16 units (cache keys
/// have their own bound: core's `limits::MAX_CACHE_KEY_BYTES`).
pub const MAX_KEY_LEN: u32 = 512;
/// Longest asset file name.
pub const MAX_NAME_LEN: u32 = 255;
/// Largest cache value estimate (bytes); the cache engine enforces its own per-instance cap.
pub const MAX_CACHE_VALUE_BYTES: u64 = 8 * 1024 * 1024;
/// Most requests one port may have in flight (being worked on by the host); beyond it the
/// host answers RATE_LIMITED. A write reported `queued` gives its slot back.
pub const MAX_IN_FLIGHT: usize = 64;
/// Most writes one port may have queued (in the outbox, not yet answered); beyond it the host
/// answers RATE_LIMITED (core `slots`).
pub const MAX_QUEUED_WRITES: usize = 4096;
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
    /// `storage.<method>` (`ctx.storage.<name>.<method>`)
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

/// The methods of a `ctx.storage.<name>` collection: core's one definition of the op names.
pub use monodit_core::ops::CollectionMethod;

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
            Op::Storage(method) => method.port_op(),
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
            _ => Op::Storage(CollectionMethod::parse(s.strip_prefix("storage.")?)?),
        })
    }
}

#[cfg(feature = "host")]
pub use host_side::*;

/// Host-side decoding and the host's outbound messages live in `crate::decode`; these are
/// their old paths here.
#[cfg(feature = "host")]
pub use crate::decode::{
    error_reply, estimate_size, event, from_js_value, js_to_json, ok_reply, parse_request,
    to_js_value,
};

/// What the host decodes every inbound port message into (by `crate::decode`, which trusts
/// no field and copies nothing oversized into Rust).
#[cfg(feature = "host")]
mod host_side {
    use monodit_core::api::CollectionOp;
    use serde_json::Value;
    use wasm_bindgen::JsValue;

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
}
