//! The widget side: `connect()` and the `ctx` facades a widget author writes against.
//!
//! Kept deliberately thin (every kilobyte is downloaded by every widget): no serde, no JSON
//! codec, only plain JS objects forwarded over the port. All checks that matter happen on the
//! host, which never trusts what arrives here; the checks below only give authors earlier,
//! clearer errors.

use crate::errors::{self, obj};
use crate::protocol::HANDSHAKE_TIMEOUT_MS;
use crate::transport::{listen_for_handshakes, on_err, on_ok, then_raw, Client};
use js_sys::{Array, Function, Object, Promise, Reflect};
use monodit_core::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessagePort;

// Every widget downloads this build, so it uses the smallest allocator we found: lol_alloc's
// first-fit free list (0.6 KB less gzip than talc, several KB less than the default
// dlmalloc). Its O(free blocks) search is fine for a port client's few live allocations.
// `alloc`/`dealloc` stay out of line: inlined into every call site at opt-level 3 they cost
// more than the allocator saves. Only when the host is not compiled in (the host build keeps
// the default allocator).
#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: WidgetAlloc = WidgetAlloc(
    // SAFETY: wasm32 without the atomics feature runs this module on one thread only.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) },
);

#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
struct WidgetAlloc(lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator>);

// SAFETY: forwards to lol_alloc's GlobalAlloc unchanged.
#[cfg(all(not(feature = "host"), not(target_feature = "atomics")))]
unsafe impl std::alloc::GlobalAlloc for WidgetAlloc {
    #[inline(never)]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        self.0.alloc(layout)
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        self.0.dealloc(ptr, layout)
    }
}

#[wasm_bindgen(typescript_custom_section)]
const WIDGET_TS: &'static str = r#"
/** Options of `connect()`. */
export interface ConnectOptions {
  /** How long to wait for the host's handshake before rejecting NOT_EMBEDDED (ms, default 5000). */
  timeoutMs?: number;
  /** How long each call waits for the host before rejecting TIMEOUT (ms, default 20000;
   *  uploads wait at least 60000 without progress). Only the host's answer is timed: once
   *  the host has queued a `store.set`/`store.update` write (offline included), the call
   *  waits for the server without a deadline and never rejects TIMEOUT. */
  callTimeoutMs?: number;
}
/** Why a store callback fired (a logical edit may fire several: optimistic, then confirmed). */
export type StoreEventKind = "optimistic" | "confirmed" | "revalidated" | "rollback";
/** Second argument of `ctx.store.subscribe` callbacks. */
export interface StoreMeta {
  kind: StoreEventKind;
  /** Server version of the value (the last confirmed version while `pending`). */
  version: number;
  /** True while a local write is not yet confirmed by the server. */
  pending: boolean;
  /** The bucket id the value belongs to. */
  bucket: string;
}
/** What `ctx.store.set` resolves with once the server confirmed the write. */
export interface StoreWriteResult { value: unknown; version: number; pending: boolean; bucket: string; }
/** Options of `ctx.store.set` (a string is the same as `{ namespace }`). */
export interface StoreSetOptions {
  /** Explicit bucket (see `get`). */
  namespace?: string | null;
  /** Write only while the document is at this version (`meta.version` / `StoreWriteResult.version`,
   *  0 = never written), with this browser's pending writes on top; else reject CONFLICT
   *  with `err.data` = the current {@link StoreConflict}. */
  ifVersion?: number;
}
/** `err.data` of a CONFLICT from `ctx.store.set(value, { ifVersion })` or a stale queued write:
 *  what this browser shows now (its own queued writes included), the last confirmed
 *  `version`, and `head`, the read token `ctx.store.update` writes with (which queued write
 *  the value is; `null` when it is a confirmed document). */
export interface StoreConflict { value: unknown; version: number; head?: number | null; }
/** One asset of `ctx.assets.list()`. */
export interface AssetInfo {
  objectKey: string; name: string; size: number; contentType: string; uploadedAt: number;
  /** Signed, expiring download URL usable in `<img src>`. */
  url: string;
}
/** Second argument of `ctx.assets.subscribe` callbacks: the bucket's list changed (upload,
 *  delete, revalidation, another tab). `version` is the bucket's change counter. */
export interface AssetMeta { kind: "changed"; version: number; bucket: string; }
/** Options of `ctx.assets.upload`. */
export interface UploadOptions {
  /** Called with (loadedBytes, totalBytes) while the file is sent to the backend. `loaded`
   *  never goes backwards: a retried or resumed upload reports from the bytes already
   *  stored, and the last call has `loaded === total`. */
  onProgress?: (loaded: number, total: number) => void;
  /** File name to record (defaults to `File.name`, else "file"). */
  name?: string;
}
/** Options of `ctx.cache.set`. */
export interface CacheSetOptions { ttlMs?: number; }
/**
 * Seed 003 where clause: indexed field → exact value, or an operator object with `in`
 * (array), `gt`, `gte`, `lt`, `lte` or `startsWith`. Values are strings, numbers or booleans.
 */
export type WhereClause = Record<string, string | number | boolean | Record<string, unknown>>;
/** Seed 003 query options. */
export interface QueryOptions {
  where?: WhereClause;
  /** Exactly one indexed field, e.g. `{ createdAt: "desc" }` (ties are broken by id). */
  orderBy?: Record<string, "asc" | "desc">;
  /** Page size: an integer from 1 to 1000, default 50. */
  limit?: number;
  cursor?: string;
}
/** Seed 003 paginated result. */
export interface PaginatedResult<T> { items: T[]; cursor?: string; hasMore: boolean; }
/** Seed 003 `StorageCollection`. */
export interface StorageCollection<T = unknown> {
  get(id: string): Promise<T | null>;
  put(id: string, data: T): Promise<void>;
  delete(id: string): Promise<boolean>;
  exists(id: string): Promise<boolean>;
  getMany(ids: string[]): Promise<Map<string, T>>;
  putMany(items: Array<{ id: string; data: T }>): Promise<void>;
  deleteMany(ids: string[]): Promise<number>;
  query(options?: QueryOptions): Promise<PaginatedResult<{ id: string; data: T }>>;
  count(where?: WhereClause): Promise<number>;
}
/**
 * `ctx.storage`: one property per collection the manifest declares. Reading any other
 * string property throws UNDECLARED_COLLECTION synchronously (except `then`, `toJSON`,
 * `toString`, `valueOf`, `constructor` and symbols, so `await`/logging stay harmless);
 * `in`, `Object.keys` and spreading never throw.
 */
export type Storage = Record<string, StorageCollection>;
/** The `ctx` a widget gets from `connect()`, under seed 003's name for it. */
export type PluginContext = Ctx;
/**
 * `ctx.kv` (seed 003): small JSON values per plugin on the server, by convention under
 * `settings:` (user-configurable) and `state:` (internal) key prefixes. Needs the manifest's
 * `id` (or `slug`), like `ctx.storage`; counts toward the quota.
 */
export interface KV {
  /** The value, or `null` when the key is unset. */
  get<T = unknown>(key: string): Promise<T | null>;
  set(key: string, value: unknown): Promise<void>;
  /** Whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Every entry whose key starts with `prefix` (all without it), in key order; more than
   *  10,000 rejects PAYLOAD_TOO_LARGE (list a narrower prefix). */
  list<T = unknown>(prefix?: string): Promise<Array<{ key: string; value: T }>>;
}
/** `ctx.log` (seed 003): messages to the host page's console and event log (never throws). */
export interface Log {
  debug(message: string, data?: unknown): void;
  info(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}
"#;

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// Every facade method sends through this one out-of-line function, so the RPC setup
/// (promise, pending entry, post) is not inlined into each exported method: a smaller
/// download for every widget.
#[inline(never)]
fn send(client: &Client, op: &'static str, args: JsValue) -> Promise {
    client.call(op, args, None)
}

/// Resolves `promise`, then maps the value with `f`.
fn map_promise(promise: Promise, f: fn(JsValue) -> JsValue) -> Promise {
    on_ok(&promise, move |v| Ok(f(v)))
}

fn undefined(_: JsValue) -> JsValue {
    JsValue::UNDEFINED
}

enum Handshake {
    Waiting(Function),
    Connecting(Option<MessagePort>),
    Connected(Client),
}

thread_local! {
    // One ctx per document: a second connect() returns the same promise, so one widget page
    // never asks its host for two handshakes.
    static CONNECTING: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// Connects this widget to its host: waits for the handshake from `window.parent`, then
/// resolves with the `ctx`. Rejects NOT_EMBEDDED at once when the page has no parent, and
/// after `options.timeoutMs` (default 5000) when no host answers. Calling it again returns the
/// same promise (after a failure it tries again).
#[wasm_bindgen(unchecked_return_type = "Promise<Ctx>")]
pub fn connect(
    #[wasm_bindgen(unchecked_optional_param_type = "ConnectOptions")] options: Option<JsValue>,
) -> Promise {
    let options = options.unwrap_or(JsValue::UNDEFINED);
    if let Some(p) = CONNECTING.with(|c| c.borrow().clone()) {
        return p;
    }
    let timeout = ms_option(&options, "timeoutMs").unwrap_or(HANDSHAKE_TIMEOUT_MS);
    let call_timeout = ms_option(&options, "callTimeoutMs");
    let promise = on_err(&connect_window(timeout, call_timeout), |e| {
        CONNECTING.with(|c| c.borrow_mut().take());
        Err(e)
    });
    CONNECTING.with(|c| *c.borrow_mut() = Some(promise.clone()));
    promise
}

fn ms_option(options: &JsValue, key: &str) -> Option<u32> {
    field(options, key)
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t.min(600_000.0) as u32)
}

fn connect_window(timeout_ms: u32, call_timeout: Option<u32>) -> Promise {
    let state = Rc::new(RefCell::new(None::<Handshake>));
    let port = Promise::new(&mut |resolve, _| {
        *state.borrow_mut() = Some(Handshake::Waiting(resolve));
    });
    let st = state.clone();
    let first_error = Rc::new(RefCell::new(None::<JsValue>));
    let fe = first_error.clone();
    let listening = listen_for_handshakes(move |port| {
        let mut s = st.borrow_mut();
        match (s.as_mut(), port) {
            (Some(Handshake::Waiting(resolve)), Ok(port)) => {
                let _ = resolve.call1(&JsValue::NULL, &port);
                *s = Some(Handshake::Connecting(None));
            }
            (Some(Handshake::Waiting(_)), Err(e)) => *fe.borrow_mut() = Some(e),
            (Some(Handshake::Connecting(latest)), Ok(port)) => *latest = Some(port),
            (Some(Handshake::Connected(client)), Ok(port)) => client.replace_port(port),
            _ => {}
        }
    });
    if let Err(e) = listening {
        return Promise::reject(&e);
    }
    let timer = Promise::new(&mut |resolve, _| {
        let cb = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let _ = web_sys::window().map(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(
                cb.unchecked_ref(),
                timeout_ms as i32,
            )
        });
    });
    let raced = Promise::race(&Array::of2(&port, &timer));
    on_ok(&raced, move |got| {
        let Ok(port) = got.dyn_into::<MessagePort>() else {
            // No handshake in time: a host that speaks another version is the likelier
            // story when it did talk to us.
            return Err(first_error.borrow_mut().take().unwrap_or_else(|| {
                errors::code_error(
                    ErrorCode::NotEmbedded,
                    "no host answered: connect() must run in an iframe mounted by a monodit Host",
                )
            }));
        };
        let on_connected = move |client: &Client| {
            if let Some(ms) = call_timeout {
                client.set_call_timeout(ms);
            }
            // A re-handshake that arrived while the first port was set up wins.
            let latest = match state
                .borrow_mut()
                .replace(Handshake::Connected(client.clone()))
            {
                Some(Handshake::Connecting(latest)) => latest,
                _ => None,
            };
            if let Some(port) = latest {
                client.replace_port(port);
            }
        };
        Ok(connect_port_promise(port, timeout_ms.max(1000), on_connected).into())
    })
}

fn connect_port_promise(
    port: MessagePort,
    timeout_ms: u32,
    on_connected: impl FnOnce(&Client) + 'static,
) -> Promise {
    let (client, init) = Client::start(port, timeout_ms);
    on_ok(&init, move |init| {
        let ctx = build_ctx(client, &init)?;
        on_connected(&ctx.client);
        Ok(ctx.into())
    })
}

/// Connects a ctx to a port directly (tests, and hosts that hand out ports another way,
/// e.g. a worker). Normal widgets call `connect()`.
#[doc(hidden)]
#[wasm_bindgen(js_name = connectPort, unchecked_return_type = "Promise<Ctx>")]
pub fn connect_port_js(port: MessagePort) -> Promise {
    connect_port_promise(port, HANDSHAKE_TIMEOUT_MS, |_| {})
}

/// Rust entry point of [`connect_port_js`] (for Rust callers and tests).
pub async fn connect_port(port: MessagePort, timeout_ms: u32) -> Result<Ctx, JsValue> {
    let (client, init) = Client::start(port, timeout_ms);
    let init = wasm_bindgen_futures::JsFuture::from(init).await?;
    build_ctx(client, &init)
}

fn build_ctx(client: Client, init: &JsValue) -> Result<Ctx, JsValue> {
    let names = field(init, "collections");
    let collections: Vec<String> = if Array::is_array(&names) {
        Array::from(&names)
            .iter()
            .filter_map(|n| n.as_string())
            .collect()
    } else {
        Vec::new()
    };
    let shared = Rc::new(Shared {
        config: RefCell::new(field(init, "config")),
        listeners: RefCell::new(Vec::new()),
        next_listener: RefCell::new(1),
    });
    let s = shared.clone();
    let on_config = Closure::<dyn FnMut(JsValue)>::new(move |config: JsValue| {
        *s.config.borrow_mut() = config.clone();
        let listeners: Vec<Function> = s
            .listeners
            .borrow()
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        for f in listeners {
            // One throwing listener must not starve the others.
            let _ = f.call1(&JsValue::NULL, &config);
        }
    });
    client.on_config(on_config.into_js_value().unchecked_into());
    let storage = storage_proxy(&client, &collections)?;
    Ok(Ctx {
        client,
        instance_id: field(init, "instanceId").as_string().unwrap_or_default(),
        kind: field(init, "kind").as_string().unwrap_or_default(),
        bindings: field(init, "bindings"),
        shared,
        storage,
        updates: Rc::new(RefCell::new(JsValue::UNDEFINED)),
    })
}

struct Shared {
    config: RefCell<JsValue>,
    listeners: RefCell<Vec<(u32, Function)>>,
    next_listener: RefCell<u32>,
}

/// The object `connect()` resolves with.
#[wasm_bindgen]
pub struct Ctx {
    client: Client,
    instance_id: String,
    kind: String,
    bindings: JsValue,
    shared: Rc<Shared>,
    /// The page's `ctx.store.update()` queue (see [`Updates`]).
    updates: Updates,
    storage: JsValue,
}

#[wasm_bindgen]
impl Ctx {
    /// This widget's instance id (chosen by the host; the widget never names it).
    #[wasm_bindgen(getter, js_name = instanceId)]
    pub fn instance_id(&self) -> String {
        self.instance_id.clone()
    }

    /// `"widget"` or `"theme"`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.clone()
    }

    /// The current instance config (updated before `onConfigChange` callbacks run).
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, unknown>")]
    pub fn config(&self) -> JsValue {
        self.shared.config.borrow().clone()
    }

    /// The manifest's storage bindings as the host sees them: `[{key, backend}]`.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "Array<{key: string, backend: \"d1-json\" | \"r2-assets\"}>"
    )]
    pub fn bindings(&self) -> JsValue {
        self.bindings.clone()
    }

    /// Calls `cb(config)` after every config change (the host has already re-bound store and
    /// assets subscriptions to the new buckets). Returns a function that unsubscribes.
    #[wasm_bindgen(js_name = onConfigChange, unchecked_return_type = "() => void")]
    pub fn on_config_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(config: Record<string, unknown>) => void")]
        cb: Function,
    ) -> Function {
        let id = {
            let mut n = self.shared.next_listener.borrow_mut();
            *n += 1;
            *n
        };
        self.shared.listeners.borrow_mut().push((id, cb));
        let shared = Rc::downgrade(&self.shared);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(s) = shared.upgrade() {
                s.listeners.borrow_mut().retain(|(i, _)| *i != id);
            }
        })
        .into_js_value()
        .unchecked_into()
    }

    /// `ctx.store`: the manifest's (first) d1-json binding.
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: JsValue::UNDEFINED,
            updates: self.updates.clone(),
        }
    }

    /// `ctx.assets`: the manifest's (first) r2-assets binding.
    #[wasm_bindgen(getter)]
    pub fn assets(&self) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: JsValue::UNDEFINED,
            bucket: JsValue::UNDEFINED,
        }
    }

    /// `ctx.binding(key)`: store and assets of a named binding, for manifests that declare
    /// more than one binding of a backend.
    pub fn binding(&self, key: String) -> Binding {
        Binding {
            updates: self.updates.clone(),
            client: self.client.clone(),
            key: JsValue::from_str(&key),
        }
    }

    /// `ctx.cache`: browser-only, per instance, never sent to the server.
    #[wasm_bindgen(getter)]
    pub fn cache(&self) -> Cache {
        Cache {
            client: self.client.clone(),
        }
    }

    /// `ctx.kv`: per-plugin settings and state on the server (seed 003).
    #[wasm_bindgen(getter, unchecked_return_type = "KV")]
    pub fn kv(&self) -> Kv {
        Kv {
            client: self.client.clone(),
        }
    }

    /// `ctx.log`: messages to the host's console and event log (seed 003).
    #[wasm_bindgen(getter, unchecked_return_type = "Log")]
    pub fn log(&self) -> Log {
        Log {
            client: self.client.clone(),
        }
    }

    /// `ctx.storage`: the declared collections (seed 003).
    #[wasm_bindgen(getter, unchecked_return_type = "Storage")]
    pub fn storage(&self) -> JsValue {
        self.storage.clone()
    }

    /// Closes the port (pending calls reject CLOSED). Pages normally never call this.
    pub fn close(&self) {
        self.client.close();
    }
}

impl Ctx {
    /// Changes the per-call timeout (what `connect({callTimeoutMs})` sets).
    pub fn set_call_timeout(&self, ms: u32) {
        self.client.set_call_timeout(ms);
    }
}

/// A named binding's facades (`ctx.binding(key)`).
#[wasm_bindgen]
pub struct Binding {
    client: Client,
    key: JsValue,
    updates: Updates,
}

#[wasm_bindgen]
impl Binding {
    /// Document store of this binding (d1-json).
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: self.key.clone(),
            updates: self.updates.clone(),
        }
    }

    /// Asset bucket of this binding (r2-assets).
    #[wasm_bindgen(getter)]
    pub fn assets(&self) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: self.key.clone(),
            bucket: JsValue::UNDEFINED,
        }
    }
}

fn with_binding(args: Object, binding: &JsValue) -> JsValue {
    if !binding.is_undefined() {
        let _ = Reflect::set(&args, &"binding".into(), binding);
    }
    args.into()
}

/// Builds the unsubscribe function handed to authors; calling it twice is harmless.
fn unsubscriber(client: &Client, id: u32, op: &'static str) -> Function {
    let client = client.clone();
    let mut done = false;
    Closure::<dyn FnMut()>::new(move || {
        if !done {
            done = true;
            client.unsubscribe(id, op);
        }
    })
    .into_js_value()
    .unchecked_into()
}

/// Reports a failed subscribe: to `on_error` when given, else to the console (a subscription
/// has no promise an author could catch).
fn report_subscribe_failure(answer: Promise, on_error: Option<Function>) {
    let handler = Closure::once_into_js(move |err: JsValue| match on_error {
        Some(f) => {
            let _ = f.call1(&JsValue::NULL, &err);
        }
        None => web_sys::console::error_2(&"monodit: subscribe failed".into(), &err),
    });
    // `Promise.prototype.catch` through JS: the handler is a JS-owned once-closure.
    if let Ok(catch) = Reflect::get(&answer, &"catch".into()) {
        let _ = catch.unchecked_into::<Function>().call1(&answer, &handler);
    }
}

/// `ctx.store`: one JSON document per bucket (seed 000).
#[wasm_bindgen]
pub struct Store {
    client: Client,
    binding: JsValue,
    updates: Updates,
}

/// The tail of the page's `update()` queue: a promise that resolves once the newest update's
/// write is queued on the host (or the update settled). Updates run one at a time, in call
/// order, each reading after the one before is queued, so each computes on top of the one
/// before instead of on the same value (which would lose one of them).
type Updates = Rc<RefCell<JsValue>>;

#[wasm_bindgen]
impl Store {
    /// The document: the host's cached snapshot first (then it revalidates in the
    /// background). `namespace` picks an explicit bucket. Resolves `null` for a new bucket.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] namespace: Option<JsValue>,
    ) -> Promise {
        let args = obj(&[("namespace", &namespace.unwrap_or(JsValue::UNDEFINED))]);
        map_promise(
            send(&self.client, "store.get", with_binding(args, &self.binding)),
            |v| field(&v, "value"),
        )
    }

    /// Writes the document: subscribers see `optimistic` at once; resolves when the server
    /// confirmed (`confirmed` event). While offline it stays pending, however long that takes
    /// (the host keeps the write in its durable outbox and retries; it never rejects TIMEOUT
    /// once queued). A permanent failure (QUOTA_EXCEEDED, ...) rolls back (`rollback` event)
    /// and rejects with the code as `err.message`. `options` is a namespace, or
    /// `{namespace, ifVersion}`: with `ifVersion` the write applies only while the document
    /// is at that version, else it rejects CONFLICT with `err.data = {value, version}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<StoreWriteResult>")]
    pub fn set(
        &self,
        value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null | StoreSetOptions")]
        options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let (namespace, if_version) = if options.is_object() {
            (field(&options, "namespace"), field(&options, "ifVersion"))
        } else {
            (options, JsValue::UNDEFINED)
        };
        self.write(&value, &namespace, &if_version)
    }

    /// Read-modify-write without lost updates: calls `fn(current)` with the document and
    /// writes what it returns (a value or a promise of one) on the version it read. When
    /// another device or tab wrote first (CONFLICT), `fn` runs again on the server's value,
    /// up to 8 times, then the call rejects CONFLICT. Offline it applies locally at once
    /// (`optimistic`) and stays pending like `set`; when the write reaches a server that
    /// moved on meanwhile, `fn` re-runs on the server's value while this page is open (a
    /// write queued by a page that is gone rolls back instead, with a `rollback` event).
    #[wasm_bindgen(unchecked_return_type = "Promise<StoreWriteResult>")]
    pub fn update(
        &self,
        #[wasm_bindgen(js_name = "fn", unchecked_param_type = "(current: any) => unknown")]
        f: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] namespace: Option<JsValue>,
    ) -> Promise {
        let namespace = namespace.unwrap_or(JsValue::UNDEFINED);
        // Take a turn: `open` lets the next update of this page start.
        let mut open = JsValue::UNDEFINED;
        let turn = Promise::new(&mut |resolve, _| open = resolve.into());
        let before = Promise::resolve(&self.updates.replace(turn.into()));
        let store = self.clone_store();
        let next = open.clone();
        let result = on_ok(&before, move |_| {
            let args = obj(&[("namespace", &namespace)]);
            let read = send(
                &store.client,
                "store.get",
                with_binding(args, &store.binding),
            );
            Ok(update_attempt(store, f, namespace, read, UPDATE_ATTEMPTS, next).into())
        });
        // Settled either way (a failed read, a throwing `fn`, CONFLICT): the next one may go.
        let _ = then_raw(&result, &open, &open);
        result
    }

    /// Calls `cb(value, meta)` on every change of the bucket (`namespace`, or the bound
    /// bucket when `null`). Changes only: render the current value from `get()` first. A
    /// bound subscription follows config changes and re-links, and is handed the new bucket's
    /// value at once (`revalidated`). Callbacks may fire more than once per logical edit
    /// (optimistic, confirmed, revalidated). `onError` receives a failed subscription (e.g.
    /// NO_BINDING). Returns an unsubscribe function.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(value: any, meta: StoreMeta) => void")]
        cb: Function,
        #[wasm_bindgen(js_name = onError, unchecked_optional_param_type = "(err: MonoditError) => void")]
        on_error: Option<Function>,
    ) -> Function {
        let wrapper = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let _ = cb.call2(&JsValue::NULL, &field(&ev, "value"), &field(&ev, "meta"));
        });
        let args = obj(&[("namespace", &namespace)]);
        let _ = with_binding(args.clone(), &self.binding);
        let (id, answer) = self.client.subscribe(
            "store.subscribe",
            args,
            wrapper.into_js_value().unchecked_into(),
        );
        report_subscribe_failure(answer, on_error);
        unsubscriber(&self.client, id, "store.unsubscribe")
    }
}

/// How many times `ctx.store.update` runs its function before it gives up with CONFLICT.
const UPDATE_ATTEMPTS: u32 = 8;

impl Store {
    fn clone_store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: self.binding.clone(),
            updates: self.updates.clone(),
        }
    }

    fn write(&self, value: &JsValue, namespace: &JsValue, if_version: &JsValue) -> Promise {
        let args = obj(&[
            ("value", value),
            ("namespace", namespace),
            ("ifVersion", if_version),
        ]);
        send(&self.client, "store.set", with_binding(args, &self.binding))
    }
}

/// One round of `update`: `read` gives `{value, version, head}` (a `store.get` answer or a
/// CONFLICT's data); `f`'s result is written on that version and read token (`head`: the
/// host admits it only while it still shows the value `f` saw); a CONFLICT starts the next
/// round on the value it carries. `queued` runs once a write is queued on the host.
fn update_attempt(
    store: Store,
    f: Function,
    namespace: JsValue,
    read: Promise,
    left: u32,
    queued: JsValue,
) -> Promise {
    on_ok(&read, move |snap| {
        let version = field(&snap, "version");
        let head = field(&snap, "head");
        let next = Promise::resolve(&f.call1(&JsValue::NULL, &field(&snap, "value"))?);
        Ok(on_ok(&next, move |next| {
            let args = obj(&[
                ("value", &next),
                ("namespace", &namespace),
                ("ifVersion", &version),
                ("ifHead", &head),
            ]);
            let args = with_binding(args, &store.binding);
            let written = match queued.dyn_ref::<Function>() {
                Some(q) => store.client.call_queued("store.set", args, q.clone()),
                None => send(&store.client, "store.set", args),
            };
            Ok(on_err(&written, move |err| {
                if left <= 1 || errors::code_of(&err).as_deref() != Some("CONFLICT") {
                    return Err(err);
                }
                let data = field(&err, "data");
                let current = if data.is_object() {
                    Promise::resolve(&data)
                } else {
                    // A host that sends no current document: read it again.
                    let args = obj(&[("namespace", &namespace)]);
                    send(
                        &store.client,
                        "store.get",
                        with_binding(args, &store.binding),
                    )
                };
                Ok(update_attempt(store, f, namespace, current, left - 1, queued).into())
            })
            .into())
        })
        .into())
    })
}

/// `ctx.assets`: a set of files per bucket (seed 000).
#[wasm_bindgen]
pub struct Assets {
    client: Client,
    binding: JsValue,
    bucket: JsValue,
}

#[wasm_bindgen]
impl Assets {
    /// The same facade on an explicit bucket id (dynamic themes; widgets may name a new
    /// bucket or one created with the same contract, else INCOMPATIBLE_BUCKET).
    #[wasm_bindgen(js_name = withBucket)]
    pub fn with_bucket(&self, #[wasm_bindgen(js_name = bucketId)] bucket_id: JsValue) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: self.binding.clone(),
            bucket: bucket_id,
        }
    }

    /// Uploads a `File`/`Blob` (it crosses the port as a Blob, never base64) and resolves
    /// with its download URL, stored exactly once however often the host had to retry.
    /// QUOTA_EXCEEDED rejects with `err.message === "QUOTA_EXCEEDED"`; a file the browser can
    /// no longer read (deleted or changed on disk since it was picked) with FILE_UNREADABLE.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob | File")] file: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<Object>,
    ) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let progress = field(&options, "onProgress").dyn_into::<Function>().ok();
        let args = obj(&[("file", &file), ("name", &field(&options, "name"))]);
        map_promise(
            self.client
                .call("assets.upload", self.target(args), progress),
            |v| field(&v, "url"),
        )
    }

    /// The bucket's assets (the source of truth for its contents).
    #[wasm_bindgen(unchecked_return_type = "Promise<AssetInfo[]>")]
    pub fn list(&self) -> Promise {
        send(&self.client, "assets.list", self.target(Object::new()))
    }

    /// Deletes one asset by its `objectKey`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, #[wasm_bindgen(js_name = objectKey)] object_key: JsValue) -> Promise {
        let args = obj(&[("objectKey", &object_key)]);
        map_promise(
            send(&self.client, "assets.delete", self.target(args)),
            undefined,
        )
    }

    /// Calls `cb(assets, meta)` whenever the bucket's contents change (uploads, deletes,
    /// revalidation, re-binding after a config change). Returns an unsubscribe function.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(assets: AssetInfo[], meta: AssetMeta) => void"
        )]
        cb: Function,
        #[wasm_bindgen(js_name = onError, unchecked_optional_param_type = "(err: MonoditError) => void")]
        on_error: Option<Function>,
    ) -> Function {
        let wrapper = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let _ = cb.call2(&JsValue::NULL, &field(&ev, "assets"), &field(&ev, "meta"));
        });
        let args = Object::new();
        let _ = self.target(args.clone());
        let (id, answer) = self.client.subscribe(
            "assets.subscribe",
            args,
            wrapper.into_js_value().unchecked_into(),
        );
        report_subscribe_failure(answer, on_error);
        unsubscriber(&self.client, id, "assets.unsubscribe")
    }
}

impl Assets {
    fn target(&self, args: Object) -> JsValue {
        if !self.bucket.is_undefined() {
            let _ = Reflect::set(&args, &"namespace".into(), &self.bucket);
        }
        with_binding(args, &self.binding)
    }
}

/// `ctx.cache`: browser-only per-instance data (never sent to the server, not counted in
/// quota). Values are anything structured-cloneable, Blobs included.
#[wasm_bindgen]
pub struct Cache {
    client: Client,
}

#[wasm_bindgen]
impl Cache {
    /// The value, or `undefined` when missing or expired.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(&self, key: JsValue) -> Promise {
        send(&self.client, "cache.get", obj(&[("key", &key)]).into())
    }

    /// Stores a value; `ttlMs` expires it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        key: JsValue,
        value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CacheSetOptions")] options: Option<Object>,
    ) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let args = obj(&[
            ("key", &key),
            ("value", &value),
            ("ttlMs", &field(&options, "ttlMs")),
        ]);
        map_promise(send(&self.client, "cache.set", args.into()), undefined)
    }

    /// Removes a key.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, key: JsValue) -> Promise {
        map_promise(
            send(&self.client, "cache.delete", obj(&[("key", &key)]).into()),
            undefined,
        )
    }

    /// Every live key.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn keys(&self) -> Promise {
        send(&self.client, "cache.keys", Object::new().into())
    }

    /// Removes every key of this instance.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        map_promise(
            send(&self.client, "cache.clear", Object::new().into()),
            undefined,
        )
    }
}

/// `ctx.kv`: see the `KV` type.
#[wasm_bindgen(skip_typescript)]
pub struct Kv {
    client: Client,
}

#[wasm_bindgen]
impl Kv {
    /// The value, or `null` when unset.
    pub fn get(&self, key: JsValue) -> Promise {
        send(&self.client, "kv.get", obj(&[("key", &key)]).into())
    }

    /// Stores a JSON value.
    pub fn set(&self, key: JsValue, value: JsValue) -> Promise {
        let args = obj(&[("key", &key), ("value", &value)]);
        map_promise(send(&self.client, "kv.set", args.into()), undefined)
    }

    /// Removes a key; resolves with whether it existed.
    pub fn delete(&self, key: JsValue) -> Promise {
        send(&self.client, "kv.delete", obj(&[("key", &key)]).into())
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn list(&self, prefix: Option<JsValue>) -> Promise {
        let prefix = prefix.unwrap_or(JsValue::UNDEFINED);
        send(&self.client, "kv.list", obj(&[("prefix", &prefix)]).into())
    }
}

/// `ctx.log`: see the `Log` type. Fire and forget: a log line never rejects or throws.
#[wasm_bindgen(skip_typescript)]
pub struct Log {
    client: Client,
}

impl Log {
    // The host turns a non-string message into text; nothing is converted here (size).
    fn send(&self, level: &str, message: JsValue, data: Option<JsValue>) {
        let mut data = data.unwrap_or(JsValue::UNDEFINED);
        // Logging never throws. A function or symbol given as data cannot cross the port and
        // would lose the whole line, so it is replaced by a note (data holding one nested
        // deeper is still dropped with its line: a retry path costs widget bundle bytes).
        if data.is_function() || data.is_symbol() {
            data = JsValue::from_str("(data omitted: it cannot be sent to the host)");
        }
        let args = obj(&[
            ("level", &JsValue::from_str(level)),
            ("message", &message),
            ("data", &data),
        ]);
        let _ = on_err(&send(&self.client, "log", args.into()), |_| {
            Ok(JsValue::UNDEFINED)
        });
    }
}

#[wasm_bindgen]
impl Log {
    /// `ctx.log.debug(message, data?)`
    pub fn debug(&self, message: JsValue, data: Option<JsValue>) {
        self.send("debug", message, data)
    }
    /// `ctx.log.info(message, data?)`
    pub fn info(&self, message: JsValue, data: Option<JsValue>) {
        self.send("info", message, data)
    }
    /// `ctx.log.warn(message, data?)`
    pub fn warn(&self, message: JsValue, data: Option<JsValue>) {
        self.send("warn", message, data)
    }
    /// `ctx.log.error(message, data?)`
    pub fn error(&self, message: JsValue, data: Option<JsValue>) {
        self.send("error", message, data)
    }
}

/// Names that must read as `undefined` instead of throwing, so `await ctx.storage`,
/// `JSON.stringify(ctx.storage)` and `console.log(ctx.storage)` keep working.
const PASS_THROUGH: [&str; 5] = ["then", "toJSON", "toString", "valueOf", "constructor"];

fn storage_proxy(client: &Client, collections: &[String]) -> Result<JsValue, JsValue> {
    let target = Object::new();
    for name in collections {
        let c = StorageCollection {
            client: client.clone(),
            name: JsValue::from_str(name),
        };
        Reflect::set(&target, &JsValue::from_str(name), &JsValue::from(c))?;
    }
    Object::freeze(&target);
    let get = Closure::<dyn Fn(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        |target: JsValue, prop: JsValue| {
            let pass = match prop.as_string() {
                None => true, // symbols (Symbol.toStringTag, util.inspect.custom, ...)
                Some(name) => {
                    Reflect::has(&target, &prop).unwrap_or(false)
                        || PASS_THROUGH.contains(&name.as_str())
                }
            };
            if pass {
                return Reflect::get(&target, &prop);
            }
            let name = prop.as_string().unwrap_or_default();
            Err(errors::code_error(
                ErrorCode::UndeclaredCollection,
                &errors::join(&[
                    "collection \"",
                    &name,
                    "\" is not declared in the manifest's storage (ctx.storage holds declared \
                     collections; keep small private state in ctx.kv or ctx.cache)",
                ]),
            ))
        },
    );
    let handler = obj(&[("get", &get.into_js_value())]);
    Ok(js_sys::Proxy::new(&target, &handler).into())
}

/// One declared collection (seed 003 `StorageCollection`).
#[wasm_bindgen]
pub struct StorageCollection {
    client: Client,
    name: JsValue,
}

impl StorageCollection {
    fn call(&self, op: &'static str, fields: &[(&str, &JsValue)]) -> Promise {
        let args = obj(fields);
        let _ = Reflect::set(&args, &"collection".into(), &self.name);
        send(&self.client, op, args.into())
    }
}

#[wasm_bindgen]
impl StorageCollection {
    /// The item's data, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(&self, id: JsValue) -> Promise {
        self.call("storage.get", &[("id", &id)])
    }

    /// Creates or replaces an item.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn put(&self, id: JsValue, data: JsValue) -> Promise {
        map_promise(
            self.call("storage.put", &[("id", &id), ("data", &data)]),
            undefined,
        )
    }

    /// Deletes an item; resolves whether it existed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn delete(&self, id: JsValue) -> Promise {
        self.call("storage.delete", &[("id", &id)])
    }

    /// Whether an item exists.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn exists(&self, id: JsValue) -> Promise {
        self.call("storage.exists", &[("id", &id)])
    }

    /// The found items as a `Map` (missing ids are absent), in the order asked.
    #[wasm_bindgen(js_name = getMany, unchecked_return_type = "Promise<Map<string, any>>")]
    pub fn get_many(&self, ids: JsValue) -> Promise {
        // The host answers [[id, data], ...] so key order survives (object keys would put
        // integer-like ids first).
        map_promise(self.call("storage.getMany", &[("ids", &ids)]), |pairs| {
            let map = js_sys::Map::new();
            if Array::is_array(&pairs) {
                for pair in Array::from(&pairs).iter() {
                    let pair = Array::from(&pair);
                    map.set(&pair.get(0), &pair.get(1));
                }
            }
            map.into()
        })
    }

    /// Writes many items in one transaction.
    #[wasm_bindgen(js_name = putMany, unchecked_return_type = "Promise<void>")]
    pub fn put_many(&self, items: JsValue) -> Promise {
        map_promise(
            self.call("storage.putMany", &[("items", &items)]),
            undefined,
        )
    }

    /// Deletes many items in one transaction; resolves how many existed.
    #[wasm_bindgen(js_name = deleteMany, unchecked_return_type = "Promise<number>")]
    pub fn delete_many(&self, ids: JsValue) -> Promise {
        self.call("storage.deleteMany", &[("ids", &ids)])
    }

    /// A page of items filtered/ordered by indexed fields; pass `cursor` back for the next.
    #[wasm_bindgen(unchecked_return_type = "Promise<PaginatedResult<{id: string, data: any}>>")]
    pub fn query(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "QueryOptions")] options: Option<JsValue>,
    ) -> Promise {
        self.call(
            "storage.query",
            &[("options", &options.unwrap_or(JsValue::UNDEFINED))],
        )
    }

    /// How many items match (all when `where` is absent).
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn count(
        &self,
        #[wasm_bindgen(js_name = "where", unchecked_optional_param_type = "WhereClause")]
        where_: Option<JsValue>,
    ) -> Promise {
        self.call(
            "storage.count",
            &[("where", &where_.unwrap_or(JsValue::UNDEFINED))],
        )
    }
}
