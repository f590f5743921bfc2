//! The sync engine: one per [`crate::host::Host`], shared as `Rc<Engine>`. It serves
//! `ctx.store` and `ctx.assets` from the local-first mirror and keeps it in step with the
//! backend (DESIGN.md §6, seed 000 "Runtime Model").
//!
//! Interface notes for the bridge layer (stable; additions only):
//! - Every event carries the bucket's *current view*: `value` is what the bucket shows now
//!   (the newest pending write, else the last confirmed value), `version` is the last
//!   server-confirmed version, `pending` says whether writes are still unconfirmed.
//!   Callbacks may fire more than once per logical edit (optimistic, then confirmed, maybe
//!   revalidated); rendering the value each time is cheap and correct.
//! - [`Engine::open_with_user`] (addition) opens without `GET /v1/me` when the host already
//!   knows its user, which is also how a host page opened offline resumes its outbox.
//! - [`Engine::cache`] (addition) hands out the `ctx.cache` engine that shares the mirror.
//! - [`Engine::open`] also opens offline for a token it has seen before (see its docs).
//!
//! # Writes (`doc_set`)
//! Memory is updated and `optimistic` goes to every subscriber of the bucket on the page at
//! once (and, via BroadcastChannel, to the user's other tabs); then the mirror document and
//! the outbox entry are written in one IndexedDB transaction, and only after it committed is
//! the write PUT with its mutation id.
//! Confirmed and optimistic state are kept apart: each bucket holds its confirmed
//! value/version and an ordered queue of pending writes, and each bucket's writes are sent
//! strictly in the order they were made (one in flight per bucket; buckets in parallel), so
//! the last writer wins and a rollback removes exactly the failed write:
//! - permanent failure (a non-transient code: QUOTA_EXCEEDED, PLAN_REQUIRED,
//!   INCOMPATIBLE_BUCKET, PAYLOAD_TOO_LARGE, FORBIDDEN, ...): the write leaves the outbox, the
//!   bucket shows the newest *remaining* pending write or else the confirmed value, `rollback`
//!   is emitted, and the future rejects with the code. Because writes are sent in order, every
//!   older write has settled by then, so no older optimistic value is ever resurrected.
//! - transient failure (NETWORK, TIMEOUT, RATE_LIMITED, 5xx): the write stays in the outbox
//!   and is retried with bounded exponential backoff and jitter ([`BACKOFF_BASE_MS`] ..
//!   [`BACKOFF_MAX_MS`]); `online`, visibility and focus re-checks retry at once. Being offline
//!   can last for days, so network failures are retried for as long as it takes; a server
//!   that keeps answering INTERNAL for one write is not going to change its mind, so after
//!   [`MAX_SERVER_ERRORS`] such answers the write is rolled back with INTERNAL like a
//!   permanent failure (the count starts over when the page reloads).
//!
//! **Offline semantics:** the `doc_write` future stays pending until the server confirms the
//! write (then resolves with the confirmed snapshot) or rejects it permanently (then rejects
//! with the code). The `optimistic` event has already been delivered, so UIs never wait for the
//! network, and the caller's `queued` callback runs once the write is queued (the host then
//! tells the widget to stop timing the call). If the engine is closed (page unload, `close()`)
//! first, the future rejects with CLOSED, but the write stays in the durable outbox and any
//! open tab, or the next `Engine::open` for the same user, sends it (once: the server dedupes
//! the mutation id) and emits `confirmed`.
//!
//! **No lost update** (`monodit_core::outbox`): each write records its base version. Replays
//! and conditional writes (`WriteOptions::if_version`) are sent with `expectedVersion`; a
//! CONFLICT rolls the write back with the server's document in the error (`stale`). A write
//! older than one this browser already got confirmed is superseded: never sent.
//!
//! # Reads and revalidation
//! `doc_get` answers from memory, then IndexedDB, then the server. A cached answer returns at
//! once and queues a metadata check; checks wanted within [`BATCH_WINDOW_MS`] go out as ONE
//! `POST /v1/meta`, deduplicated per bucket (and a bucket checked less than [`DEDUPE_MS`] ago
//! is not checked again unless forced), so N widgets on one bucket never cause N requests.
//! Only buckets whose server version moved are fetched in full (`revalidated`).
//!
//! Re-checks of every active bucket (documents and asset lists) run on `visibilitychange` to
//! visible, on `online`, and on window `focus` when focus comes from outside the page (a
//! focus that follows a blur into one of the page's own iframes is ignored), at most once per
//! [`RECHECK_THROTTLE_MS`] (DESIGN.md §9: spurious focus events are common).
//!
//! # Tabs
//! Tabs of the same user share the IndexedDB mirror; events go to the other tabs over the
//! BroadcastChannel [`channel_name`], and a Web Lock ([`lock_name`]) lets one tab at a time
//! send outbox entries (without Web Locks every tab flushes; the server's mutation-id dedupe
//! keeps that correct). Every flush pass first adopts the whole shared outbox, and a tab
//! that committed writes says so on the channel, so whichever tab is open sends every tab's
//! writes, also those of a tab that closed since.

use crate::cache::Cache;
use crate::http::{Api, DocumentFetch};
use crate::mirror::{AssetRecord, DocRecord, Mirror, OutboxRecord};
use crate::web::{local_storage_get, local_storage_set, now, sleep, with_lock};
use futures::channel::oneshot;
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use monodit_core::api::{
    self, AssetInfo, BatchMetaRequest, BatchMetaResponse, CollectionOp, Contract, DeletedBucket,
    PutDocument,
};
use monodit_core::buckets::Backend;
use monodit_core::outbox::{self, Settled};
use monodit_core::queue::{AfterFailure, Batch, BucketQueue, QueuedWrite};
use monodit_core::{Error, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Window in which metadata checks are gathered into one batch request.
pub const BATCH_WINDOW_MS: i32 = 10;
/// A bucket checked this recently is not checked again by a read (forced re-checks are).
pub const DEDUPE_MS: f64 = 2_000.0;
/// Focus / visibility / online re-checks run at most once per this interval.
pub const RECHECK_THROTTLE_MS: f64 = 5_000.0;
/// First retry delay of a write that failed transiently.
pub const BACKOFF_BASE_MS: f64 = 500.0;
/// Longest retry delay.
pub const BACKOFF_MAX_MS: f64 = 30_000.0;
/// Most queued writes of one bucket confirmed by one coalesced PUT (see `send_batch`).
pub const MAX_COALESCED: usize = 500;
/// INTERNAL (500) answers to one write after which it is rolled back instead of retried.
pub const MAX_SERVER_ERRORS: u32 = outbox::MAX_SERVER_ERRORS;

/// Signed download URLs expire (`exp=`, epoch seconds); a list whose URLs expire within this
/// margin is listed again instead of being served from the mirror.
pub const URL_FRESH_MARGIN_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Whether every signed URL of a list stays valid for at least [`URL_FRESH_MARGIN_MS`].
fn urls_fresh(assets: &[AssetInfo]) -> bool {
    let limit_secs = (now() + URL_FRESH_MARGIN_MS) / 1000.0;
    assets.iter().all(|a| {
        let exp = a
            .url
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("exp=")))
            .and_then(|e| e.parse::<f64>().ok());
        exp.map(|e| e > limit_secs).unwrap_or(true)
    })
}

/// localStorage key prefix of "token fingerprint → user id" (see [`Engine::open`]).
pub const KNOWN_USER_PREFIX: &str = "monodit-bridge:user:";

/// BroadcastChannel name for a user's cross-tab events.
pub fn channel_name(user_id: &str) -> String {
    format!("monodit-bridge:{user_id}")
}

/// Web Lock name that serialises outbox flushing across a user's tabs.
pub fn lock_name(user_id: &str) -> String {
    format!("monodit-bridge-outbox:{user_id}")
}

/// A resolved bucket with the contract of the binding that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRef {
    /// The bucket id.
    pub bucket_id: String,
    /// Backend, schema id and version of the binding.
    pub contract: Contract,
}

/// Why a document event fired (`meta.kind` for widgets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A local write, shown before the server confirmed it.
    Optimistic,
    /// The server confirmed a write.
    Confirmed,
    /// A newer server version was fetched (another client wrote, or the bucket was deleted).
    Revalidated,
    /// A write failed permanently and was undone.
    Rollback,
}

impl EventKind {
    /// `"optimistic"`, `"confirmed"`, `"revalidated"` or `"rollback"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Optimistic => "optimistic",
            EventKind::Confirmed => "confirmed",
            EventKind::Revalidated => "revalidated",
            EventKind::Rollback => "rollback",
        }
    }
}

/// A change of a document bucket, delivered to its subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct DocEvent {
    /// The bucket.
    pub bucket_id: String,
    /// Why it fired.
    pub kind: EventKind,
    /// What the bucket shows now.
    pub value: Value,
    /// The last server-confirmed version (0 = never written).
    pub version: u64,
    /// Whether writes are still unconfirmed.
    pub pending: bool,
}

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

/// A change of an asset bucket's list.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEvent {
    /// The bucket.
    pub bucket_id: String,
    /// The whole list, oldest first.
    pub assets: Vec<AssetInfo>,
    /// The bucket's change counter.
    pub version: u64,
}

/// Handle returned by the subscribe methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The raw number (for protocol messages).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A queued write of a document bucket (core's queue over JSON values).
type Pending = QueuedWrite<Value>;

/// A durable write read back from the outbox; `known_version` is the mirror's confirmed
/// version, the base of entries written before writes recorded theirs.
fn from_outbox(e: OutboxRecord, known_version: u64) -> Pending {
    QueuedWrite {
        mutation_id: e.mutation_id,
        value: e.value,
        contract: e.contract,
        seq: e.seq,
        durable: true,
        server_errors: 0,
        base_version: e.base_version.unwrap_or(known_version),
        condition: e.condition,
        replay: true,
        after: e.after,
    }
}

/// Options of [`Engine::doc_write`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriteOptions {
    /// Apply only while the bucket is at this version (with this browser's pending writes on
    /// top); CONFLICT otherwise.
    pub if_version: Option<u64>,
    /// With `if_version`: the read token (`head`) of the snapshot the value was computed on
    /// (`Some(None)` when it had none). Admitted only while the bucket still shows that
    /// value (`core::outbox::admit`); `update()` sends it.
    pub if_head: Option<Option<f64>>,
}

/// A document bucket in memory: core's queue (the confirmed document and this browser's
/// queued writes, with every transition) and when it was last checked against the server.
#[derive(Debug, Clone, Default)]
struct Doc {
    q: BucketQueue<Value>,
    last_checked: f64,
}

impl Doc {
    fn from_record(rec: DocRecord) -> Doc {
        Doc {
            q: BucketQueue {
                contract: rec.contract,
                confirmed_value: rec.confirmed_value,
                confirmed_version: rec.confirmed_version,
                known: rec.confirmed_known,
                settled: rec.settled,
                ..BucketQueue::default()
            },
            last_checked: 0.0,
        }
    }

    fn snapshot(&self) -> DocSnapshot {
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
    fn conflict(&self, expected: u64) -> Error {
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

    fn record(&self, bucket_id: &str) -> DocRecord {
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

#[derive(Debug, Clone)]
struct AssetState {
    version: u64,
    assets: Vec<AssetInfo>,
    last_checked: f64,
}

type DocCb = Rc<dyn Fn(&DocEvent)>;
type AssetCb = Rc<dyn Fn(&AssetEvent)>;
type Waiter = oneshot::Sender<Result<DocSnapshot, Error>>;
type Load = Shared<LocalBoxFuture<'static, Result<(), Error>>>;

#[derive(Default)]
struct State {
    docs: HashMap<String, Doc>,
    assets: HashMap<String, AssetState>,
    doc_subs: HashMap<String, Vec<(u64, DocCb)>>,
    asset_subs: HashMap<String, Vec<(u64, AssetCb)>>,
    next_id: u64,
    doc_loads: HashMap<String, Load>,
    asset_loads: HashMap<String, Load>,
    want_docs: BTreeSet<String>,
    want_assets: BTreeSet<String>,
    batch_scheduled: bool,
    waiters: HashMap<String, Vec<Waiter>>,
    flushing: bool,
    flush_again: bool,
    /// Writes waiting for the mirror (see `Engine::persist`).
    persist_queue: Vec<(DocRecord, OutboxRecord)>,
    /// Whether a group commit is running.
    persisting: bool,
    wake: Option<oneshot::Sender<()>>,
    last_recheck: f64,
    page_had_focus: bool,
    seq: u64,
}

impl State {
    /// The bucket's document state, created empty on first use.
    fn doc_mut(&mut self, bucket_id: &str) -> &mut Doc {
        self.docs.entry(bucket_id.to_string()).or_default()
    }
}

/// A cross-tab message (JSON over BroadcastChannel).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum TabMessage {
    #[serde(rename_all = "camelCase")]
    Doc {
        bucket_id: String,
        kind: EventKind,
        value: Value,
        confirmed_value: Value,
        confirmed_version: u64,
        pending: bool,
        #[serde(default)]
        mutation_id: Option<String>,
        /// More writes settled by the same event (a coalesced send, see `send_batch`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also_settled: Vec<String>,
        #[serde(default)]
        error: Option<Error>,
        /// The newest write of this browser confirmed for the bucket.
        #[serde(default)]
        settled: Settled,
    },
    /// Writes were committed to the shared outbox: whichever tab flushes sends them, even
    /// after the tab that made them closed.
    #[serde(rename_all = "camelCase")]
    Queued { bucket_ids: Vec<String> },
    #[serde(rename_all = "camelCase")]
    Assets {
        bucket_id: String,
        version: u64,
        assets: Vec<AssetInfo>,
    },
    /// A document bucket was deleted (see `Engine::delete_bucket`); its writes that were
    /// still queued arrive as `rollback` right after.
    #[serde(rename_all = "camelCase")]
    Deleted { bucket_id: String },
}

/// The cross-tab channel and its message handler (kept alive together).
type Channel = (
    web_sys::BroadcastChannel,
    Closure<dyn FnMut(web_sys::MessageEvent)>,
);
type Listener = (
    web_sys::EventTarget,
    &'static str,
    Closure<dyn FnMut(web_sys::Event)>,
);

/// The host-side data engine. See the module docs for its rules.
pub struct Engine {
    api: Api,
    user_id: String,
    mirror: Rc<Mirror>,
    cache: Cache,
    me: Weak<Engine>,
    state: RefCell<State>,
    listeners: RefCell<Vec<Listener>>,
    channel: RefCell<Option<Channel>>,
    closed: Cell<bool>,
    /// Minimum spacing of event-driven re-checks (ms); [`RECHECK_THROTTLE_MS`] by default.
    recheck_throttle_ms: Cell<f64>,
}

fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}

fn new_mutation_id() -> String {
    let from_crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .ok()
        .and_then(|c| {
            let f = js_sys::Reflect::get(&c, &JsValue::from_str("randomUUID")).ok()?;
            let f: js_sys::Function = f.dyn_into().ok()?;
            f.call0(&c).ok()?.as_string()
        });
    from_crypto.unwrap_or_else(|| {
        let r = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        format!("m-{:x}-{:08x}{:08x}", now() as u64, r(), r())
    })
}

/// Delay before retry `attempt` (1-based): exponential, capped, with "equal jitter" so many
/// tabs or hosts coming back online do not retry in lockstep.
fn backoff_ms(attempt: u32) -> f64 {
    let exp = BACKOFF_BASE_MS * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let capped = exp.min(BACKOFF_MAX_MS);
    capped / 2.0 + js_sys::Math::random() * capped / 2.0
}

/// One bucket's next PUT: core's batch and a copy of its newest write (its value and
/// mutation id go out).
struct Outgoing {
    batch: Batch,
    last: Pending,
}

enum Pass {
    Done,
    Transient,
}

impl Engine {
    /// Opens the engine for the token's user: `GET /v1/me`, then [`Engine::open_with_user`].
    ///
    /// A host page reloaded while offline still opens: when `/v1/me` fails transiently, the
    /// user this token belonged to last time (remembered in localStorage under a SHA-256 of
    /// the token, never the token itself) is used, so the mirror answers reads and the outbox
    /// resumes once the network is back. Without such a record the error is returned.
    pub async fn open(api: Api) -> Result<Rc<Engine>, Error> {
        let key = api
            .token_fingerprint()
            .await
            .map(|h| format!("{KNOWN_USER_PREFIX}{h}"));
        match api.me().await {
            Ok(me) => {
                if let Some(k) = &key {
                    local_storage_set(k, &me.user_id);
                }
                Ok(Engine::open_with_user(api, &me.user_id).await)
            }
            Err(e) if e.code.is_transient() => match key.and_then(|k| local_storage_get(&k)) {
                Some(user_id) => {
                    warn(&format!(
                        "monodit-bridge: backend unreachable ({}); opening offline from the local mirror",
                        e.code
                    ));
                    Ok(Engine::open_with_user(api, &user_id).await)
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Opens the engine for a user the host already knows (no request needed, so a host page
    /// loaded offline can still serve its mirror and keep its outbox). Opens the user's
    /// IndexedDB (memory with a console warning if unavailable), installs the re-check and
    /// cross-tab listeners, and resumes the outbox.
    pub async fn open_with_user(api: Api, user_id: &str) -> Rc<Engine> {
        let mirror = Rc::new(Mirror::open(user_id).await);
        let engine = Rc::new_cyclic(|me| Engine {
            api,
            user_id: user_id.to_string(),
            cache: Cache::new(mirror.clone()),
            mirror,
            me: me.clone(),
            state: RefCell::new(State::default()),
            listeners: RefCell::new(Vec::new()),
            channel: RefCell::new(None),
            closed: Cell::new(false),
            recheck_throttle_ms: Cell::new(RECHECK_THROTTLE_MS),
        });
        engine.state.borrow_mut().page_had_focus = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.has_focus().ok())
            .unwrap_or(false);
        engine.install_listeners();
        engine.open_channel();
        engine.resume_outbox().await;
        engine
    }

    /// The backend client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The user this engine serves.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The `ctx.cache` engine (same per-user database).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Whether the mirror is IndexedDB (true) or memory only.
    pub fn is_persistent(&self) -> bool {
        self.mirror.is_persistent()
    }

    /// Number of writes not yet confirmed by the server (this engine's view).
    pub fn pending_writes(&self) -> usize {
        self.state
            .borrow()
            .docs
            .values()
            .map(|d| d.q.pending.len())
            .sum()
    }

    fn rc(&self) -> Option<Rc<Engine>> {
        self.me.upgrade()
    }

    fn closed_error() -> Error {
        Error::new(ErrorCode::Closed, "the host's data engine was closed")
    }

    // ----- documents -------------------------------------------------------------------

    /// The bucket's current snapshot: memory → IndexedDB → server. A cached answer returns at
    /// once and a background metadata check follows (emitting `revalidated` if the server is
    /// newer). A never-written bucket reads as `null`, version 0. A bucket created with another
    /// contract answers INCOMPATIBLE_BUCKET.
    pub async fn doc_get(&self, b: &BucketRef) -> Result<DocSnapshot, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let cached = {
            let st = self.state.borrow();
            st.docs
                .get(&b.bucket_id)
                .filter(|d| d.q.known)
                .map(|d| (d.snapshot(), d.q.contract.clone()))
        };
        if let Some((snap, contract)) = cached {
            check_contract(b, contract.as_ref())?;
            self.want_check(std::slice::from_ref(&b.bucket_id), &[], false);
            return Ok(snap);
        }
        self.load_doc(b).await?;
        let st = self.state.borrow();
        let doc = st
            .docs
            .get(&b.bucket_id)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "document vanished while loading"))?;
        check_contract(b, doc.q.contract.as_ref())?;
        Ok(doc.snapshot())
    }

    /// Starts loading a bucket's mirrored document into memory, without any request: the host
    /// calls it when it mounts a widget, so the widget's first `get` after a page reload is
    /// answered from memory instead of waiting for IndexedDB. A bucket the mirror does not
    /// hold is left for the widget's first read.
    pub fn warm(&self, bucket_id: &str) {
        if self.closed.get() || self.state.borrow().docs.contains_key(bucket_id) {
            return;
        }
        let Some(me) = self.rc() else { return };
        let bucket = bucket_id.to_string();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(rec) = me.mirror.get_doc(&bucket).await {
                if rec.confirmed_known {
                    me.merge_base(&bucket, Doc::from_record(rec));
                }
            }
        });
    }

    /// The contract a document bucket is known to have (memory, else the mirror; no request).
    pub async fn known_contract(&self, bucket_id: &str) -> Option<Contract> {
        let mem = self
            .state
            .borrow()
            .docs
            .get(bucket_id)
            .and_then(|d| d.q.contract.clone());
        match mem {
            Some(c) => Some(c),
            None => self
                .mirror
                .get_doc(bucket_id)
                .await
                .and_then(|r| r.contract),
        }
    }

    /// What memory holds for a bucket right now (no IndexedDB or network), if it is known.
    pub fn peek(&self, bucket_id: &str) -> Option<DocSnapshot> {
        self.state
            .borrow()
            .docs
            .get(bucket_id)
            .filter(|d| d.q.known)
            .map(Doc::snapshot)
    }

    /// Loads a bucket into memory once, however many callers ask at the same time.
    async fn load_doc(&self, b: &BucketRef) -> Result<(), Error> {
        let load = {
            let mut st = self.state.borrow_mut();
            if let Some(l) = st.doc_loads.get(&b.bucket_id) {
                l.clone()
            } else {
                let me = self.rc().ok_or_else(Self::closed_error)?;
                let bucket = b.bucket_id.clone();
                let fut: LocalBoxFuture<'static, Result<(), Error>> =
                    Box::pin(async move { me.load_doc_uncached(&bucket).await });
                let shared = fut.shared();
                st.doc_loads.insert(b.bucket_id.clone(), shared.clone());
                shared
            }
        };
        let out = load.await;
        self.state.borrow_mut().doc_loads.remove(&b.bucket_id);
        out
    }

    async fn load_doc_uncached(&self, bucket_id: &str) -> Result<(), Error> {
        let mirrored = self.mirror.get_doc(bucket_id).await;
        if let Some(rec) = mirrored.clone().filter(|r| r.confirmed_known) {
            self.merge_base(bucket_id, Doc::from_record(rec));
            self.want_check(&[bucket_id.to_string()], &[], false);
            return Ok(());
        }
        let fetched = match self.api.document(bucket_id, None).await {
            Ok(f) => f,
            Err(e) if e.code.is_transient() && mirrored.is_some() => {
                // Offline with only local writes: show them (pending) rather than fail.
                if let Some(rec) = mirrored {
                    self.merge_base(bucket_id, Doc::from_record(rec));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let base = match fetched {
            DocumentFetch::Fresh(doc) => Doc {
                q: BucketQueue {
                    contract: Some(doc.contract),
                    confirmed_value: doc.value,
                    confirmed_version: doc.meta.version,
                    ..BucketQueue::default()
                },
                last_checked: 0.0,
            },
            DocumentFetch::Missing | DocumentFetch::NotModified => Doc::default(),
        };
        let mut base = base;
        base.q.known = true;
        base.last_checked = now();
        let rec = self.merge_base(bucket_id, base);
        if let Err(e) = self.mirror.put_doc(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        Ok(())
    }

    /// Installs a loaded confirmed base under any pending writes made meanwhile.
    fn merge_base(&self, bucket_id: &str, base: Doc) -> DocRecord {
        let mut st = self.state.borrow_mut();
        let doc = st.doc_mut(bucket_id);
        // A placeholder base (never read from the server) never replaces anything.
        if base.q.known && (!doc.q.known || base.q.confirmed_version > doc.q.confirmed_version) {
            doc.q.contract = base.q.contract.or(doc.q.contract.take());
            doc.q.confirmed_value = base.q.confirmed_value;
            doc.q.confirmed_version = base.q.confirmed_version;
            doc.q.known = true;
        }
        doc.last_checked = doc.last_checked.max(base.last_checked);
        doc.q.settled = doc.q.settled.newest(base.q.settled);
        doc.record(bucket_id)
    }

    /// Writes the bucket's document (a plain `set()`, see [`Engine::doc_write`]).
    pub async fn doc_set(&self, b: &BucketRef, value: Value) -> Result<DocSnapshot, Error> {
        self.doc_write(b, value, WriteOptions::default(), || {})
            .await
    }

    /// Writes the bucket's document. Emits `optimistic` at once and calls `queued` once the
    /// write is in the outbox (from then on it is going to be sent, however long that takes);
    /// resolves with the confirmed snapshot once the server accepted the write, or rejects
    /// with the code after a permanent failure (`rollback` emitted). Offline it stays pending
    /// (see module docs). With `if_version`, a bucket no longer at that version rejects
    /// CONFLICT, with `{value, version}` of the current document as the error's detail.
    pub async fn doc_write(
        &self,
        b: &BucketRef,
        value: Value,
        opts: WriteOptions,
        queued: impl FnOnce(),
    ) -> Result<DocSnapshot, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let size = serde_json::to_string(&value)
            .map(|s| s.len() as u64)
            .unwrap_or(u64::MAX);
        if size > api::MAX_DOCUMENT_BYTES {
            // Known up front to be permanent: reject before showing anything.
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the document is {size} bytes; the limit is {}",
                    api::MAX_DOCUMENT_BYTES
                ),
            )
            .with_detail(serde_json::json!({"size": size, "limit": api::MAX_DOCUMENT_BYTES})));
        }
        let needs_base = !self.state.borrow().docs.contains_key(&b.bucket_id);
        if needs_base {
            if let Some(rec) = self.mirror.get_doc(&b.bucket_id).await {
                self.merge_base(&b.bucket_id, Doc::from_record(rec));
            }
        }
        let mutation_id = new_mutation_id();
        let (rec, outbox, snap) = {
            let mut st = self.state.borrow_mut();
            st.seq += 1;
            let clock_seq = now() * 1000.0 + (st.seq % 1000) as f64;
            let doc = st.doc_mut(&b.bucket_id);
            let Ok((base_version, condition, after)) = doc.q.place(opts.if_version, opts.if_head)
            else {
                return Err(doc.conflict(opts.if_version.unwrap_or_default()));
            };
            let seq = doc.q.next_seq(clock_seq);
            doc.q.push(QueuedWrite {
                mutation_id: mutation_id.clone(),
                value: value.clone(),
                contract: b.contract.clone(),
                seq,
                durable: false,
                server_errors: 0,
                base_version,
                condition,
                replay: false,
                after,
            });
            let outbox = OutboxRecord {
                mutation_id: mutation_id.clone(),
                bucket_id: b.bucket_id.clone(),
                seq,
                value,
                contract: b.contract.clone(),
                created_at: now(),
                base_version: Some(base_version),
                condition,
                after,
            };
            (doc.record(&b.bucket_id), outbox, doc.snapshot())
        };
        let (tx, rx) = oneshot::channel();
        self.state
            .borrow_mut()
            .waiters
            .entry(mutation_id.clone())
            .or_default()
            .push(tx);
        self.emit_doc(
            &b.bucket_id,
            EventKind::Optimistic,
            &snap,
            std::slice::from_ref(&mutation_id),
            None,
            true,
        );
        // Persist and send in a task of its own: a caller that stops waiting (an unmounted
        // widget) must not leave the write unsent. Sending starts only after the outbox
        // entry committed.
        self.persist(rec, outbox);
        queued();
        rx.await.unwrap_or_else(|_| Err(Self::closed_error()))
    }

    /// Queues a write for the mirror (document record + outbox entry). Writes queued while a
    /// transaction is committing go together in the next one (group commit): a burst of sets
    /// costs a few IndexedDB transactions, not one each, and each write is still durable
    /// before it is sent.
    fn persist(&self, rec: DocRecord, outbox: OutboxRecord) {
        let start = {
            let mut st = self.state.borrow_mut();
            st.persist_queue.push((rec, outbox));
            !std::mem::replace(&mut st.persisting, true)
        };
        if !start {
            return;
        }
        let Some(me) = self.rc() else { return };
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let batch = std::mem::take(&mut me.state.borrow_mut().persist_queue);
                if batch.is_empty() {
                    break;
                }
                // The newest record of each bucket is the one to keep.
                let mut docs: HashMap<String, DocRecord> = HashMap::new();
                let mut writes: Vec<OutboxRecord> = Vec::with_capacity(batch.len());
                for (rec, write) in batch {
                    docs.insert(rec.bucket_id.clone(), rec);
                    writes.push(write);
                }
                let docs: Vec<DocRecord> = docs.into_values().collect();
                match me.mirror.write_sets(&docs, &writes).await {
                    Ok(()) => {
                        let gone: Vec<String> = writes
                            .iter()
                            .filter(|w| !me.mark_durable(&w.bucket_id, &w.mutation_id))
                            .map(|w| w.mutation_id.clone())
                            .collect();
                        if !gone.is_empty() {
                            // Dropped (bucket deleted) while committing: never resend them.
                            if let Err(e) = me.mirror.delete_outbox(&gone).await {
                                warn(&format!("monodit-bridge: mirror write failed: {e}"));
                            }
                        }
                        // The other tabs adopt them: if this tab closes before it could send
                        // them, whichever tab flushes next does.
                        let bucket_ids: BTreeSet<String> =
                            writes.iter().map(|w| w.bucket_id.clone()).collect();
                        me.post(&TabMessage::Queued {
                            bucket_ids: bucket_ids.into_iter().collect(),
                        });
                    }
                    // Still queued in memory and sent; they just would not survive a reload.
                    Err(e) => warn(&format!(
                        "monodit-bridge: could not persist {} pending write(s): {e}",
                        writes.len()
                    )),
                }
                me.kick_flush();
            }
            me.state.borrow_mut().persisting = false;
        });
    }

    /// Subscribes to a document bucket's events.
    pub fn doc_subscribe(&self, bucket_id: &str, cb: Rc<dyn Fn(&DocEvent)>) -> SubscriptionId {
        let mut st = self.state.borrow_mut();
        st.next_id += 1;
        let id = st.next_id;
        st.doc_subs
            .entry(bucket_id.to_string())
            .or_default()
            .push((id, cb));
        SubscriptionId(id)
    }

    /// Subscribes to an asset bucket's list changes.
    pub fn assets_subscribe(&self, bucket_id: &str, cb: Rc<dyn Fn(&AssetEvent)>) -> SubscriptionId {
        let mut st = self.state.borrow_mut();
        st.next_id += 1;
        let id = st.next_id;
        st.asset_subs
            .entry(bucket_id.to_string())
            .or_default()
            .push((id, cb));
        SubscriptionId(id)
    }

    /// Gives one subscription the bucket's current state, as a `revalidated` document event or
    /// an asset list event: used when the bucket behind a subscription changed (a config
    /// change, re-link or bucket deletion moved the binding), so a widget that only subscribes
    /// shows the new bucket instead of the old one. Nothing is delivered if the subscription
    /// ended meanwhile or the state cannot be read (a later check will deliver it).
    pub async fn replay(&self, b: &BucketRef, id: SubscriptionId) {
        match b.contract.backend {
            Backend::D1Json => {
                let Ok(snap) = self.doc_get(b).await else {
                    return;
                };
                let cb = self
                    .state
                    .borrow()
                    .doc_subs
                    .get(&b.bucket_id)
                    .and_then(|subs| {
                        subs.iter()
                            .find(|(i, _)| *i == id.0)
                            .map(|(_, cb)| cb.clone())
                    });
                if let Some(cb) = cb {
                    cb(&DocEvent {
                        bucket_id: b.bucket_id.clone(),
                        kind: EventKind::Revalidated,
                        value: snap.value,
                        version: snap.version,
                        pending: snap.pending,
                    });
                }
            }
            Backend::R2Assets => {
                let Ok(assets) = self.assets_list(b).await else {
                    return;
                };
                let (cb, version) = {
                    let st = self.state.borrow();
                    let cb = st.asset_subs.get(&b.bucket_id).and_then(|subs| {
                        subs.iter()
                            .find(|(i, _)| *i == id.0)
                            .map(|(_, cb)| cb.clone())
                    });
                    (cb, st.assets.get(&b.bucket_id).map_or(0, |a| a.version))
                };
                if let Some(cb) = cb {
                    cb(&AssetEvent {
                        bucket_id: b.bucket_id.clone(),
                        assets,
                        version,
                    });
                }
            }
        }
    }

    /// Removes a subscription (unknown ids are ignored).
    pub fn unsubscribe(&self, id: SubscriptionId) {
        let mut st = self.state.borrow_mut();
        for subs in st.doc_subs.values_mut() {
            subs.retain(|(i, _)| *i != id.0);
        }
        st.doc_subs.retain(|_, s| !s.is_empty());
        for subs in st.asset_subs.values_mut() {
            subs.retain(|(i, _)| *i != id.0);
        }
        st.asset_subs.retain(|_, s| !s.is_empty());
    }

    /// Delivers an event to this page's subscribers and (if `broadcast`) to the user's other tabs.
    fn emit_doc(
        &self,
        bucket_id: &str,
        kind: EventKind,
        snap: &DocSnapshot,
        mutation_ids: &[String],
        error: Option<&Error>,
        broadcast: bool,
    ) {
        let (subs, confirmed) = {
            let st = self.state.borrow();
            let subs: Vec<DocCb> = st
                .doc_subs
                .get(bucket_id)
                .map(|v| v.iter().map(|(_, cb)| cb.clone()).collect())
                .unwrap_or_default();
            let confirmed = st
                .docs
                .get(bucket_id)
                .map(|d| {
                    (
                        d.q.confirmed_value.clone(),
                        d.q.confirmed_version,
                        d.q.settled,
                    )
                })
                .unwrap_or((Value::Null, 0, Settled::default()));
            (subs, confirmed)
        };
        if broadcast {
            self.post(&TabMessage::Doc {
                bucket_id: bucket_id.to_string(),
                kind,
                value: snap.value.clone(),
                confirmed_value: confirmed.0,
                confirmed_version: confirmed.1,
                pending: snap.pending,
                mutation_id: mutation_ids.first().cloned(),
                also_settled: mutation_ids.iter().skip(1).cloned().collect(),
                error: error.cloned(),
                settled: confirmed.2,
            });
        }
        if subs.is_empty() {
            return;
        }
        let ev = DocEvent {
            bucket_id: bucket_id.to_string(),
            kind,
            value: snap.value.clone(),
            version: snap.version,
            pending: snap.pending,
        };
        for cb in subs {
            cb(&ev);
        }
    }

    fn emit_assets(&self, bucket_id: &str, broadcast: bool) {
        let (subs, ev) = {
            let st = self.state.borrow();
            let Some(a) = st.assets.get(bucket_id) else {
                return;
            };
            let subs: Vec<AssetCb> = st
                .asset_subs
                .get(bucket_id)
                .map(|v| v.iter().map(|(_, cb)| cb.clone()).collect())
                .unwrap_or_default();
            let ev = AssetEvent {
                bucket_id: bucket_id.to_string(),
                assets: a.assets.clone(),
                version: a.version,
            };
            (subs, ev)
        };
        if broadcast {
            self.post(&TabMessage::Assets {
                bucket_id: ev.bucket_id.clone(),
                version: ev.version,
                assets: ev.assets.clone(),
            });
        }
        for cb in subs {
            cb(&ev);
        }
    }

    // ----- outbox --------------------------------------------------------------------------

    /// Loads durable writes left by an earlier page (or engine) and sends them.
    async fn resume_outbox(&self) {
        self.adopt_outbox().await;
        if self.pending_writes() > 0 {
            self.kick_flush();
        }
    }

    /// Takes every write of the shared outbox this tab does not hold yet into its queue: left
    /// by an earlier page, or made by another tab, open or closed (so a write never waits for
    /// the tab that made it). Entries superseded by a newer confirmed write are settled and
    /// removed instead of sent.
    async fn adopt_outbox(&self) {
        let entries = self.mirror.outbox().await;
        if entries.is_empty() || self.closed.get() {
            return;
        }
        let buckets: BTreeSet<String> = entries.iter().map(|e| e.bucket_id.clone()).collect();
        for bucket in &buckets {
            // The mirrored record also carries what other tabs confirmed meanwhile.
            if let Some(rec) = self.mirror.get_doc(bucket).await {
                self.merge_base(bucket, Doc::from_record(rec));
            }
        }
        {
            let mut st = self.state.borrow_mut();
            for e in entries {
                let doc = st.doc_mut(&e.bucket_id);
                let known = doc.q.confirmed_version;
                doc.q.adopt(from_outbox(e, known));
            }
        }
        for bucket in buckets {
            self.settle_superseded(&bucket).await;
        }
    }

    /// Settles the bucket's queued writes that a newer confirmed write of this browser
    /// supersedes (sent now, they would put an older value over a newer one): removed from
    /// the outbox unsent, their `set()`s resolve with the bucket's snapshot, and the other
    /// tabs settle them too.
    async fn settle_superseded(&self, bucket_id: &str) {
        let (ids, snap, rec) = {
            let mut st = self.state.borrow_mut();
            let Some(doc) = st.docs.get_mut(bucket_id) else {
                return;
            };
            let ids = doc.q.apply_settled();
            if ids.is_empty() {
                return;
            }
            (ids, doc.snapshot(), doc.record(bucket_id))
        };
        self.emit_doc(bucket_id, EventKind::Confirmed, &snap, &ids, None, true);
        for mid in &ids {
            self.resolve_waiters(mid, Ok(snap.clone()));
        }
        if let Err(e) = self.mirror.write_settled(&rec, &ids).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    /// Starts the flusher, or tells the running one to look again; wakes a backoff sleep.
    fn kick_flush(&self) {
        let Some(me) = self.rc() else { return };
        let mut st = self.state.borrow_mut();
        if let Some(w) = st.wake.take() {
            let _ = w.send(());
        }
        if st.flushing {
            st.flush_again = true;
            return;
        }
        st.flushing = true;
        drop(st);
        wasm_bindgen_futures::spawn_local(async move { me.flush_loop().await });
    }

    async fn flush_loop(self: Rc<Self>) {
        let mut attempt: u32 = 0;
        loop {
            if self.closed.get() {
                break;
            }
            self.state.borrow_mut().flush_again = false;
            let lock = lock_name(&self.user_id);
            match with_lock(&lock, self.flush_pass()).await {
                Pass::Done => {
                    attempt = 0;
                    if !self.state.borrow().flush_again {
                        break;
                    }
                }
                Pass::Transient => {
                    attempt = attempt.saturating_add(1);
                    let (tx, rx) = oneshot::channel();
                    self.state.borrow_mut().wake = Some(tx);
                    let delay = sleep(backoff_ms(attempt) as i32);
                    futures::pin_mut!(delay);
                    let _ = futures::future::select(delay, rx).await;
                    self.state.borrow_mut().wake = None;
                }
            }
        }
        self.state.borrow_mut().flushing = false;
    }

    /// What every bucket not in `skip` sends next: its oldest pending write and the newer
    /// ones with the same contract right behind it (see [`Engine::send_batch`]). Only the
    /// newest value is cloned: it is the one that goes out.
    fn heads(&self, skip: &HashSet<String>) -> Vec<(String, Outgoing)> {
        let st = self.state.borrow();
        st.docs
            .iter()
            .filter(|(id, _)| !skip.contains(*id))
            .filter_map(|(id, d)| {
                let batch = d.q.next_batch(MAX_COALESCED)?;
                let last = d.q.pending[batch.last].clone();
                Some((id.clone(), Outgoing { batch, last }))
            })
            .collect()
    }

    /// Sends pending writes: one in flight per bucket (so each bucket's writes land in the
    /// order they were made), buckets in parallel (so one bucket that keeps failing does not
    /// hold the others back). A bucket whose write failed transiently sits out the rest of
    /// the pass; the pass then reports `Transient` and the loop backs off.
    async fn flush_pass(&self) -> Pass {
        // Under the lock, so no other tab is sending (or settling) an entry meanwhile.
        self.adopt_outbox().await;
        let mut failed: HashSet<String> = HashSet::new();
        loop {
            if self.closed.get() {
                return Pass::Done;
            }
            let heads = self.heads(&failed);
            if heads.is_empty() {
                return if failed.is_empty() {
                    Pass::Done
                } else {
                    Pass::Transient
                };
            }
            let sends = heads.into_iter().map(|(bucket_id, out)| async move {
                let ok = self.send_batch(&bucket_id, &out).await;
                (bucket_id, ok)
            });
            for (bucket_id, ok) in futures::future::join_all(sends).await {
                if !ok {
                    failed.insert(bucket_id);
                }
            }
        }
    }

    /// Sends a bucket's oldest writes as ONE request and settles them; false when it failed
    /// transiently (kept for a retry).
    ///
    /// A document is replaced whole, so sending only the newest of several queued writes
    /// leaves the server exactly where sending each in order would, in one round trip instead
    /// of one per write: 1,000 quick `set()`s cost a handful of PUTs. The newest write's
    /// mutation id is sent; the older ones are confirmed with it. If such a coalesced send
    /// fails permanently, nothing is rolled back yet: the writes are sent one by one again,
    /// so exactly the refused write rolls back (as if they had never been coalesced).
    async fn send_batch(&self, bucket_id: &str, out: &Outgoing) -> bool {
        let (batch, last) = (&out.batch, &out.last);
        let Some(head) = batch.ids.first() else {
            return true;
        };
        if batch.head_durable
            && self.mirror.is_persistent()
            && !self.mirror.outbox_contains(head).await
        {
            if !self.closed.get() {
                // Another tab sent and settled it (its broadcast may still be on the way):
                // forget it here and let a forced check pick up the server's state.
                self.drop_settled_elsewhere(bucket_id, head);
            }
            return true;
        }
        let body = PutDocument {
            value: last.value.clone(),
            schema_id: last.contract.schema_id.clone(),
            schema_version: last.contract.schema_version,
            mutation_id: Some(last.mutation_id.clone()),
            expected_version: batch.expected_version,
        };
        let e = match self.api.put_document(bucket_id, &body).await {
            Ok(meta) => {
                self.settle_confirmed(bucket_id, &batch.ids, last, meta.version)
                    .await;
                return true;
            }
            Err(e) => e,
        };
        let next = {
            let mut st = self.state.borrow_mut();
            match st.docs.get_mut(bucket_id) {
                Some(doc) => doc.q.on_failure(batch, e.code),
                None => return true, // forgotten meanwhile (the bucket was deleted)
            }
        };
        match next {
            AfterFailure::Retry => false,
            AfterFailure::Split => true,
            AfterFailure::Stale => {
                self.settle_stale(bucket_id, &batch.ids, batch.expected_version)
                    .await;
                true
            }
            AfterFailure::RollBack => {
                self.settle_rollback(bucket_id, head, e).await;
                true
            }
        }
    }

    /// The server holds a newer version than the batch was based on (CONFLICT): the batch is
    /// stale. Its writes roll back with CONFLICT instead of overwriting that version; the
    /// server's document is fetched first, so the rollback shows it and the error carries it
    /// (`{value, version}`) for a caller that wants to merge and write again.
    async fn settle_stale(&self, bucket_id: &str, ids: &[String], expected: Option<u64>) {
        match self.api.document(bucket_id, None).await {
            Ok(DocumentFetch::Fresh(doc)) => {
                self.apply_revalidated(bucket_id, Some(doc.contract), doc.value, doc.meta.version)
                    .await
            }
            Ok(DocumentFetch::Missing) => {
                self.apply_revalidated(bucket_id, None, Value::Null, 0)
                    .await
            }
            // Unknown for now: the rollback shows the last confirmed value and a forced check
            // follows.
            _ => self.want_check(&[bucket_id.to_string()], &[], true),
        }
        let (snap, rec, settled, err) = {
            let mut st = self.state.borrow_mut();
            let Some(doc) = st.docs.get_mut(bucket_id) else {
                return;
            };
            let settled = doc.q.settle_stale(ids);
            if settled.is_empty() {
                return;
            }
            let err = doc.conflict(expected.unwrap_or_default());
            (doc.snapshot(), doc.record(bucket_id), settled, err)
        };
        self.emit_doc(
            bucket_id,
            EventKind::Rollback,
            &snap,
            &settled,
            Some(&err),
            true,
        );
        for mid in &settled {
            self.resolve_waiters(mid, Err(err.clone()));
        }
        if let Err(e) = self.mirror.write_settled(&rec, &settled).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    /// Its outbox entry committed (until then a missing entry proves nothing).
    /// Returns false when the write is no longer pending here (its bucket was deleted while
    /// the entry was being committed): the caller removes the entry again.
    fn mark_durable(&self, bucket_id: &str, mutation_id: &str) -> bool {
        let mut st = self.state.borrow_mut();
        st.docs
            .get_mut(bucket_id)
            .is_some_and(|doc| doc.q.mark_durable(mutation_id))
    }

    fn drop_settled_elsewhere(&self, bucket_id: &str, mutation_id: &str) {
        let snap = {
            let mut st = self.state.borrow_mut();
            let Some(doc) = st.docs.get_mut(bucket_id) else {
                return;
            };
            doc.q.remove(&[mutation_id.to_string()]);
            doc.snapshot()
        };
        self.resolve_waiters(mutation_id, Ok(snap));
        self.want_check(&[bucket_id.to_string()], &[], true);
    }

    fn resolve_waiters(&self, mutation_id: &str, result: Result<DocSnapshot, Error>) {
        let waiters = self
            .state
            .borrow_mut()
            .waiters
            .remove(mutation_id)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    /// The server stored `last`'s value as `version`: every write in `ids` (one send's batch)
    /// is confirmed, with one `confirmed` event for all of them.
    async fn settle_confirmed(
        &self,
        bucket_id: &str,
        ids: &[String],
        last: &Pending,
        version: u64,
    ) {
        let (snap, rec, settled) = {
            let mut st = self.state.borrow_mut();
            let Some(doc) = st.docs.get_mut(bucket_id) else {
                return;
            };
            let settled = doc.q.confirm(
                ids,
                last.value.clone(),
                last.contract.clone(),
                last.seq,
                version,
            );
            if settled.is_empty() {
                return; // settled already (another tab's broadcast)
            }
            (doc.snapshot(), doc.record(bucket_id), settled)
        };
        self.emit_doc(bucket_id, EventKind::Confirmed, &snap, &settled, None, true);
        for mid in &settled {
            self.resolve_waiters(mid, Ok(snap.clone()));
        }
        if let Err(e) = self.mirror.write_settled(&rec, &settled).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    async fn settle_rollback(&self, bucket_id: &str, mutation_id: &str, err: Error) {
        let (snap, rec, known) = {
            let mut st = self.state.borrow_mut();
            let Some(doc) = st.docs.get_mut(bucket_id) else {
                return;
            };
            if !doc.q.roll_back(mutation_id) {
                return;
            }
            (doc.snapshot(), doc.record(bucket_id), doc.q.known)
        };
        self.emit_doc(
            bucket_id,
            EventKind::Rollback,
            &snap,
            &[mutation_id.to_string()],
            Some(&err),
            true,
        );
        self.resolve_waiters(mutation_id, Err(err));
        if let Err(e) = self
            .mirror
            .write_settled(&rec, &[mutation_id.to_string()])
            .await
        {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        if !known {
            // We never saw the server's value: ask for it so the rollback lands on the truth.
            self.want_check(&[bucket_id.to_string()], &[], true);
        }
    }

    // ----- metadata checks -----------------------------------------------------------------

    /// Queues metadata checks; everything queued within [`BATCH_WINDOW_MS`] goes in one request.
    fn want_check(&self, docs: &[String], assets: &[String], force: bool) {
        if self.closed.get() {
            return;
        }
        let t = now();
        let mut st = self.state.borrow_mut();
        let mut added = false;
        for d in docs {
            let recent = st
                .docs
                .get(d)
                .map(|x| t - x.last_checked < DEDUPE_MS)
                .unwrap_or(false);
            if force || !recent {
                added |= st.want_docs.insert(d.clone());
            }
        }
        for a in assets {
            let recent = st
                .assets
                .get(a)
                .map(|x| t - x.last_checked < DEDUPE_MS)
                .unwrap_or(false);
            if force || !recent {
                added |= st.want_assets.insert(a.clone());
            }
        }
        if !added || st.batch_scheduled {
            return;
        }
        st.batch_scheduled = true;
        drop(st);
        let Some(me) = self.rc() else { return };
        wasm_bindgen_futures::spawn_local(async move {
            sleep(BATCH_WINDOW_MS).await;
            me.run_batch().await;
        });
    }

    async fn run_batch(&self) {
        let (docs, assets) = {
            let mut st = self.state.borrow_mut();
            st.batch_scheduled = false;
            let docs: Vec<String> = std::mem::take(&mut st.want_docs).into_iter().collect();
            let assets: Vec<String> = std::mem::take(&mut st.want_assets).into_iter().collect();
            let t = now();
            for d in &docs {
                if let Some(x) = st.docs.get_mut(d) {
                    x.last_checked = t;
                }
            }
            for a in &assets {
                if let Some(x) = st.assets.get_mut(a) {
                    x.last_checked = t;
                }
            }
            (docs, assets)
        };
        if self.closed.get() || (docs.is_empty() && assets.is_empty()) {
            return;
        }
        // More than the server's batch limit: several requests, still far fewer than buckets.
        let n = docs.len().max(assets.len());
        let chunks = n.div_ceil(api::MAX_BATCH_META).max(1);
        for i in 0..chunks {
            let lo = i * api::MAX_BATCH_META;
            let req = BatchMetaRequest {
                documents: docs
                    .iter()
                    .skip(lo)
                    .take(api::MAX_BATCH_META)
                    .cloned()
                    .collect(),
                assets: assets
                    .iter()
                    .skip(lo)
                    .take(api::MAX_BATCH_META)
                    .cloned()
                    .collect(),
            };
            match self.api.batch_meta(&req).await {
                Ok(resp) => self.apply_meta(resp).await,
                Err(e) => {
                    // Offline or server trouble: the next re-check tries again.
                    let mut st = self.state.borrow_mut();
                    for d in &req.documents {
                        if let Some(x) = st.docs.get_mut(d) {
                            x.last_checked = 0.0;
                        }
                    }
                    for a in &req.assets {
                        if let Some(x) = st.assets.get_mut(a) {
                            x.last_checked = 0.0;
                        }
                    }
                    if !e.code.is_transient() {
                        warn(&format!("monodit-bridge: metadata check failed: {e}"));
                    }
                }
            }
        }
    }

    async fn apply_meta(&self, resp: BatchMetaResponse) {
        let mut doc_fetches = Vec::new();
        for (bucket_id, meta) in resp.documents {
            let (have, known) = {
                let st = self.state.borrow();
                st.docs
                    .get(&bucket_id)
                    .map(|d| (d.q.confirmed_version, d.q.known))
                    .unwrap_or((0, false))
            };
            match meta {
                Some(m) if m.version > have || (!known && m.version > 0) => {
                    doc_fetches.push(self.revalidate_doc(bucket_id, have));
                }
                None if have > 0 => {
                    // Deleted on the server: the local copy is invalid (seed 000).
                    self.apply_revalidated(&bucket_id, None, Value::Null, 0)
                        .await;
                }
                None if !known => {
                    // The server has nothing: the placeholder base (null, 0) is the truth.
                    let rec = {
                        let mut st = self.state.borrow_mut();
                        st.docs.get_mut(&bucket_id).map(|d| {
                            d.q.known = true;
                            d.record(&bucket_id)
                        })
                    };
                    if let Some(rec) = rec {
                        if let Err(e) = self.mirror.put_doc(&rec).await {
                            warn(&format!("monodit-bridge: mirror write failed: {e}"));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut asset_fetches = Vec::new();
        for (bucket_id, meta) in resp.assets {
            let server = meta.map(|m| m.version).unwrap_or(0);
            let known = |me: &Engine| {
                me.state
                    .borrow()
                    .assets
                    .get(&bucket_id)
                    .map(|a| (a.version, urls_fresh(&a.assets)))
            };
            let mut have = known(self);
            if have.is_none() {
                // Never listed on this page: the mirror may hold the list, and a bucket the
                // server does not have is an empty list at version 0. Neither needs a fetch.
                let start = match self.mirror.get_assets(&bucket_id).await {
                    Some(rec) => Some((rec.version, rec.assets)),
                    None if server == 0 => Some((0, Vec::new())),
                    None => None,
                };
                if let Some((version, assets)) = start {
                    self.state
                        .borrow_mut()
                        .assets
                        .entry(bucket_id.clone())
                        .or_insert(AssetState {
                            version,
                            assets,
                            last_checked: now(),
                        });
                    have = known(self);
                }
            }
            match have {
                Some((v, fresh)) if v == server && fresh => {}
                _ => asset_fetches.push(self.refresh_assets(bucket_id)),
            }
        }
        futures::future::join(
            futures::future::join_all(doc_fetches),
            futures::future::join_all(asset_fetches),
        )
        .await;
    }

    async fn revalidate_doc(&self, bucket_id: String, have: u64) {
        let cond = (have > 0).then_some(have);
        match self.api.document(&bucket_id, cond).await {
            Ok(DocumentFetch::Fresh(doc)) => {
                self.apply_revalidated(&bucket_id, Some(doc.contract), doc.value, doc.meta.version)
                    .await
            }
            Ok(DocumentFetch::Missing) if have > 0 => {
                self.apply_revalidated(&bucket_id, None, Value::Null, 0)
                    .await
            }
            Ok(_) => {}
            Err(e) if !e.code.is_transient() => warn(&format!(
                "monodit-bridge: revalidation of {bucket_id} failed: {e}"
            )),
            Err(_) => {}
        }
    }

    async fn apply_revalidated(
        &self,
        bucket_id: &str,
        contract: Option<Contract>,
        value: Value,
        version: u64,
    ) {
        let (snap, rec) = {
            let mut st = self.state.borrow_mut();
            let doc = st.doc_mut(bucket_id);
            let deleted = version == 0;
            if !deleted && doc.q.known && version <= doc.q.confirmed_version {
                return; // our own confirmed write, or an older answer
            }
            doc.q.contract = contract;
            doc.q.confirmed_value = value;
            doc.q.confirmed_version = version;
            doc.q.known = true;
            (doc.snapshot(), doc.record(bucket_id))
        };
        self.emit_doc(bucket_id, EventKind::Revalidated, &snap, &[], None, false);
        if let Err(e) = self.mirror.put_doc(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    /// Re-checks every active bucket now (documents and asset lists, one batch request) and
    /// retries the outbox at once. Event-driven re-checks call this, throttled.
    ///
    /// Active means subscribed: a re-check exists to tell subscribers, and a bucket nobody
    /// listens to is checked on its next read anyway.
    pub fn recheck(&self) {
        let (docs, assets) = {
            let st = self.state.borrow();
            let docs: Vec<String> = st.doc_subs.keys().cloned().collect();
            let assets: Vec<String> = st.asset_subs.keys().cloned().collect();
            (docs, assets)
        };
        self.want_check(&docs, &assets, true);
        // Also with nothing pending here: another tab (maybe closed by now) may have left
        // writes in the shared outbox, which the flusher adopts.
        self.kick_flush();
    }

    /// Changes the minimum spacing of event-driven re-checks (focus, visibility, online);
    /// explicit [`Engine::recheck`] calls are never throttled.
    pub fn set_recheck_throttle_ms(&self, ms: f64) {
        self.recheck_throttle_ms.set(ms.max(0.0));
    }

    /// A re-check asked for by a browser event, at most once per throttle window
    /// ([`RECHECK_THROTTLE_MS`] unless [`Engine::set_recheck_throttle_ms`] changed it).
    fn event_recheck(&self) {
        let t = now();
        {
            let mut st = self.state.borrow_mut();
            if t - st.last_recheck < self.recheck_throttle_ms.get() {
                return;
            }
            st.last_recheck = t;
        }
        self.recheck();
    }

    fn install_listeners(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let Some(document) = window.document() else {
            return;
        };
        let add = |target: web_sys::EventTarget, name: &'static str, f: Box<dyn Fn(&Engine)>| {
            let me = self.me.clone();
            let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
                if let Some(engine) = me.upgrade() {
                    if !engine.closed.get() {
                        f(&engine);
                    }
                }
            });
            if target
                .add_event_listener_with_callback(name, cb.as_ref().unchecked_ref())
                .is_ok()
            {
                self.listeners.borrow_mut().push((target, name, cb));
            }
        };
        let doc_for_vis = document.clone();
        add(
            document.clone().into(),
            "visibilitychange",
            Box::new(move |e| {
                if doc_for_vis.visibility_state() == web_sys::VisibilityState::Visible {
                    e.event_recheck();
                }
            }),
        );
        add(
            window.clone().into(),
            "online",
            Box::new(|e| {
                e.kick_flush();
                e.event_recheck();
            }),
        );
        // Focus counts only when it comes from outside the page: when the window blurs because
        // focus moved into one of the page's own iframes, the document still has focus, and
        // the focus event that follows when it comes back is not a reason to re-check.
        let doc_for_blur = document.clone();
        add(
            window.clone().into(),
            "blur",
            Box::new(move |e| {
                let me = e.me.clone();
                let d = doc_for_blur.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    // activeElement / hasFocus settle after the blur event.
                    sleep(0).await;
                    if let Some(engine) = me.upgrade() {
                        engine.state.borrow_mut().page_had_focus = d.has_focus().unwrap_or(false);
                    }
                });
            }),
        );
        add(
            window.into(),
            "focus",
            Box::new(|e| {
                let had = std::mem::replace(&mut e.state.borrow_mut().page_had_focus, true);
                if !had {
                    e.event_recheck();
                }
            }),
        );
    }

    // ----- assets --------------------------------------------------------------------------

    /// The bucket's asset list: memory → IndexedDB → server; a cached answer returns at once
    /// and is re-checked in the background (subscribers get the new list if it changed).
    pub async fn assets_list(&self, b: &BucketRef) -> Result<Vec<AssetInfo>, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let cached = |me: &Engine| {
            me.state
                .borrow()
                .assets
                .get(&b.bucket_id)
                .map(|a| a.assets.clone())
        };
        let list = match cached(self) {
            Some(list) => list,
            None => {
                self.load_assets(&b.bucket_id).await?;
                cached(self).unwrap_or_default()
            }
        };
        if !urls_fresh(&list) {
            // The mirrored download URLs are (nearly) expired: list again. Offline, the stale
            // list is still better than nothing.
            return match self.fetch_assets(&b.bucket_id).await {
                Ok(changed) => {
                    if changed {
                        self.emit_assets(&b.bucket_id, true);
                    }
                    Ok(cached(self).unwrap_or_default())
                }
                Err(_) => Ok(list),
            };
        }
        self.want_check(&[], std::slice::from_ref(&b.bucket_id), false);
        Ok(list)
    }

    async fn load_assets(&self, bucket_id: &str) -> Result<(), Error> {
        let load = {
            let mut st = self.state.borrow_mut();
            if let Some(l) = st.asset_loads.get(bucket_id) {
                l.clone()
            } else {
                let me = self.rc().ok_or_else(Self::closed_error)?;
                let bucket = bucket_id.to_string();
                let fut: LocalBoxFuture<'static, Result<(), Error>> = Box::pin(async move {
                    if let Some(rec) = me.mirror.get_assets(&bucket).await {
                        me.state
                            .borrow_mut()
                            .assets
                            .entry(bucket.clone())
                            .or_insert(AssetState {
                                version: rec.version,
                                assets: rec.assets,
                                last_checked: 0.0,
                            });
                        me.want_check(&[], &[bucket], false);
                        return Ok(());
                    }
                    me.fetch_assets(&bucket).await.map(|_| ())
                });
                let shared = fut.shared();
                st.asset_loads.insert(bucket_id.to_string(), shared.clone());
                shared
            }
        };
        let out = load.await;
        self.state.borrow_mut().asset_loads.remove(bucket_id);
        out
    }

    /// Lists from the server; stores and returns whether the list changed.
    async fn fetch_assets(&self, bucket_id: &str) -> Result<bool, Error> {
        let list = self.api.assets(bucket_id).await?;
        let changed = {
            let mut st = self.state.borrow_mut();
            let prev = st.assets.insert(
                bucket_id.to_string(),
                AssetState {
                    version: list.version,
                    assets: list.assets.clone(),
                    last_checked: now(),
                },
            );
            prev.map(|p| p.version != list.version || p.assets != list.assets)
                .unwrap_or(true)
        };
        let rec = AssetRecord {
            bucket_id: bucket_id.to_string(),
            version: list.version,
            assets: list.assets,
        };
        if let Err(e) = self.mirror.put_assets(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        Ok(changed)
    }

    async fn refresh_assets(&self, bucket_id: String) {
        match self.fetch_assets(&bucket_id).await {
            Ok(true) => self.emit_assets(&bucket_id, true),
            Ok(false) => {}
            Err(e) if !e.code.is_transient() => warn(&format!(
                "monodit-bridge: asset list of {bucket_id} failed: {e}"
            )),
            Err(_) => {}
        }
    }

    /// Uploads a file (progress as `(loaded, total)` bytes; see [`crate::uploads`] for
    /// retries, FILE_UNREADABLE and resuming), then refreshes the list and notifies the
    /// bucket's subscribers. Quota failures reject with QUOTA_EXCEEDED.
    pub async fn assets_upload(
        &self,
        b: &BucketRef,
        blob: web_sys::Blob,
        name: String,
        on_progress: Rc<dyn Fn(f64, f64)>,
    ) -> Result<AssetInfo, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let target = crate::uploads::UploadTarget {
            bucket_id: &b.bucket_id,
            contract: &b.contract,
            blob: &blob,
            name: &name,
        };
        let info = crate::uploads::upload(&self.api, &self.mirror, &target, on_progress).await?;
        self.refresh_assets(b.bucket_id.clone()).await;
        Ok(info)
    }

    /// Deletes one asset, then refreshes the list and notifies the bucket's subscribers.
    pub async fn assets_delete(&self, b: &BucketRef, object_key: &str) -> Result<(), Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        self.api.delete_asset(&b.bucket_id, object_key).await?;
        self.refresh_assets(b.bucket_id.clone()).await;
        Ok(())
    }

    // ----- bucket deletion -------------------------------------------------------------------

    /// Deletes a bucket on the backend (topology UI).
    ///
    /// For a document bucket this runs under the outbox lock, so no tab is sending a write to
    /// it meanwhile; once the server has deleted it, every write still waiting for it (this
    /// tab's and, through the shared outbox, other tabs') is dropped: rolled back to `null`
    /// and rejected with NOT_FOUND. Otherwise a write made before the delete would be sent
    /// after it and silently re-create the bucket. If the delete fails, nothing is dropped.
    pub async fn delete_bucket(
        &self,
        backend: Backend,
        bucket_id: &str,
    ) -> Result<DeletedBucket, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        if backend == Backend::R2Assets {
            let deleted = self.api.delete_bucket(backend, bucket_id).await?;
            self.forget_assets(bucket_id).await;
            return Ok(deleted);
        }
        let lock = lock_name(&self.user_id);
        with_lock(&lock, async {
            let deleted = self.api.delete_bucket(backend, bucket_id).await?;
            self.forget_doc(bucket_id).await;
            Ok(deleted)
        })
        .await
    }

    /// The document bucket is gone on the server: drop its pending writes, show `null`.
    /// Writes still waiting for the group commit are dropped from its queue; one being
    /// committed right now is removed again by `persist` once it finds it no longer pending.
    async fn forget_doc(&self, bucket_id: &str) {
        self.state
            .borrow_mut()
            .persist_queue
            .retain(|(_, w)| w.bucket_id != bucket_id);
        let mut dropped: Vec<String> = self
            .mirror
            .outbox()
            .await
            .into_iter()
            .filter(|r| r.bucket_id == bucket_id)
            .map(|r| r.mutation_id)
            .collect();
        let (snap, rec) = {
            let mut st = self.state.borrow_mut();
            let doc = st.doc_mut(bucket_id);
            for p in doc.q.delete() {
                if !dropped.contains(&p.mutation_id) {
                    dropped.push(p.mutation_id);
                }
            }
            (doc.snapshot(), doc.record(bucket_id))
        };
        self.post(&TabMessage::Deleted {
            bucket_id: bucket_id.to_string(),
        });
        if dropped.is_empty() {
            self.emit_doc(bucket_id, EventKind::Revalidated, &snap, &[], None, false);
        } else {
            // One rollback settles every dropped write, here and in the other tabs.
            let err = Error::new(
                ErrorCode::NotFound,
                "the bucket was deleted before this write reached the server",
            );
            self.emit_doc(
                bucket_id,
                EventKind::Rollback,
                &snap,
                &dropped,
                Some(&err),
                true,
            );
            for mid in &dropped {
                self.resolve_waiters(mid, Err(err.clone()));
            }
        }
        // The document record and the removal of the dropped outbox entries: one transaction.
        if let Err(e) = self.mirror.write_settled(&rec, &dropped).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    /// The asset bucket is gone on the server: its list is empty at version 0.
    async fn forget_assets(&self, bucket_id: &str) {
        self.state.borrow_mut().assets.insert(
            bucket_id.to_string(),
            AssetState {
                version: 0,
                assets: Vec::new(),
                last_checked: now(),
            },
        );
        self.emit_assets(bucket_id, true);
        let rec = AssetRecord {
            bucket_id: bucket_id.to_string(),
            version: 0,
            assets: Vec::new(),
        };
        if let Err(e) = self.mirror.put_assets(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }

    // ----- collections -----------------------------------------------------------------------

    /// A seed-003 collection operation, passed through to the backend (collections are not
    /// mirrored: queries and cursors are the server's).
    pub async fn collection(
        &self,
        plugin_id: &str,
        collection: &str,
        op: CollectionOp,
    ) -> Result<Value, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        self.api.collection(plugin_id, collection, &op).await
    }

    // ----- cross-tab -------------------------------------------------------------------------

    fn open_channel(&self) {
        let Ok(ch) = web_sys::BroadcastChannel::new(&channel_name(&self.user_id)) else {
            return;
        };
        let me = self.me.clone();
        let cb =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let Some(engine) = me.upgrade() else { return };
                if engine.closed.get() {
                    return;
                }
                let Some(text) = e.data().as_string() else {
                    return;
                };
                if let Ok(msg) = serde_json::from_str::<TabMessage>(&text) {
                    engine.on_tab_message(msg);
                }
            });
        ch.set_onmessage(Some(cb.as_ref().unchecked_ref()));
        *self.channel.borrow_mut() = Some((ch, cb));
    }

    fn post(&self, msg: &TabMessage) {
        let ch = self.channel.borrow();
        let Some((ch, _)) = ch.as_ref() else { return };
        if let Ok(text) = serde_json::to_string(msg) {
            let _ = ch.post_message(&JsValue::from_str(&text));
        }
    }

    fn on_tab_message(&self, msg: TabMessage) {
        match msg {
            TabMessage::Doc {
                bucket_id,
                kind,
                value,
                confirmed_value,
                confirmed_version,
                pending,
                mutation_id,
                also_settled,
                error,
                settled: newest,
            } => {
                let mut settled: Vec<String> = Vec::new();
                let superseded: Vec<String>;
                let snap = {
                    let mut st = self.state.borrow_mut();
                    if !st.docs.contains_key(&bucket_id) && !st.doc_subs.contains_key(&bucket_id) {
                        return; // a bucket this tab does not use
                    }
                    let doc = st.doc_mut(&bucket_id);
                    if confirmed_version > doc.q.confirmed_version {
                        doc.q.confirmed_value = confirmed_value;
                        doc.q.confirmed_version = confirmed_version;
                        doc.q.known = true;
                    }
                    if matches!(kind, EventKind::Confirmed | EventKind::Rollback) {
                        // Writes of ours that another tab sent (or settled).
                        let ids: Vec<String> =
                            mutation_id.into_iter().chain(also_settled).collect();
                        settled = doc.q.remove(&ids);
                    }
                    // Another tab got a newer write confirmed: ours older than it are
                    // superseded, newer ones rebased (that tab settles the outbox).
                    superseded = doc.q.merge_settled(newest);
                    if kind == EventKind::Optimistic {
                        // The other tab's optimistic value, over our own confirmed version.
                        DocSnapshot {
                            value,
                            version: doc.q.confirmed_version,
                            pending,
                            head: None,
                        }
                    } else {
                        doc.snapshot()
                    }
                };
                for mid in superseded {
                    self.resolve_waiters(&mid, Ok(snap.clone()));
                }
                for mid in settled {
                    let result = match (&kind, &error) {
                        (EventKind::Rollback, Some(e)) => Err(e.clone()),
                        (EventKind::Rollback, None) => {
                            Err(Error::new(ErrorCode::Internal, "rolled back"))
                        }
                        _ => Ok(snap.clone()),
                    };
                    self.resolve_waiters(&mid, result);
                }
                self.emit_doc(&bucket_id, kind, &snap, &[], None, false);
            }
            TabMessage::Queued { bucket_ids } => {
                let _ = bucket_ids; // any tab may send any bucket's writes
                self.kick_flush();
            }
            TabMessage::Deleted { bucket_id } => {
                // The deleting tab already rewrote the shared mirror and rolled back the
                // outbox entries it found. Writes of this tab it could not see (not yet
                // committed) must not re-create the bucket either: they go too, and an entry
                // committed later is removed again by `persist` (no longer pending).
                let (snap, dropped) = {
                    let mut st = self.state.borrow_mut();
                    st.persist_queue.retain(|(_, w)| w.bucket_id != bucket_id);
                    let Some(doc) = st.docs.get_mut(&bucket_id) else {
                        return; // a bucket this tab does not use
                    };
                    let dropped: Vec<String> =
                        doc.q.delete().into_iter().map(|p| p.mutation_id).collect();
                    (doc.snapshot(), dropped)
                };
                let err = Error::new(
                    ErrorCode::NotFound,
                    "the bucket was deleted before this write reached the server",
                );
                for mid in &dropped {
                    self.resolve_waiters(mid, Err(err.clone()));
                }
                let (kind, error) = if dropped.is_empty() {
                    (EventKind::Revalidated, None)
                } else {
                    (EventKind::Rollback, Some(&err))
                };
                self.emit_doc(&bucket_id, kind, &snap, &dropped, error, false);
            }
            TabMessage::Assets {
                bucket_id,
                version,
                assets,
            } => {
                let changed = {
                    let mut st = self.state.borrow_mut();
                    if !st.assets.contains_key(&bucket_id)
                        && !st.asset_subs.contains_key(&bucket_id)
                    {
                        return; // a bucket this tab does not use
                    }
                    let prev = st.assets.insert(
                        bucket_id.clone(),
                        AssetState {
                            version,
                            assets,
                            last_checked: now(),
                        },
                    );
                    prev.map(|p| p.version != version).unwrap_or(true)
                };
                if changed {
                    self.emit_assets(&bucket_id, false);
                }
            }
        }
    }

    // ----- lifecycle -------------------------------------------------------------------------

    /// Removes listeners, closes the channel and the database, rejects pending `doc_set`
    /// futures with CLOSED (their writes stay in the durable outbox). Idempotent.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        for (target, name, cb) in self.listeners.borrow_mut().drain(..) {
            let _ = target.remove_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
        }
        if let Some((ch, _cb)) = self.channel.borrow_mut().take() {
            ch.set_onmessage(None);
            ch.close();
        }
        let waiters: Vec<Waiter> = {
            let mut st = self.state.borrow_mut();
            if let Some(w) = st.wake.take() {
                let _ = w.send(());
            }
            st.waiters.drain().flat_map(|(_, v)| v).collect()
        };
        for w in waiters {
            let _ = w.send(Err(Self::closed_error()));
        }
        self.mirror.close();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

fn check_contract(b: &BucketRef, have: Option<&Contract>) -> Result<(), Error> {
    match have {
        Some(c) if c != &b.contract => Err(Error::new(
            ErrorCode::IncompatibleBucket,
            format!(
                "bucket {} was created as {} {} v{}, not {} {} v{}",
                b.bucket_id,
                c.backend.as_str(),
                c.schema_id,
                c.schema_version,
                b.contract.backend.as_str(),
                b.contract.schema_id,
                b.contract.schema_version
            ),
        )
        .with_detail(serde_json::json!({"bucketId": b.bucket_id, "contract": c}))),
        _ => Ok(()),
    }
}
