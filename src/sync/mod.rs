//! The sync engine: one per [`crate::host::Host`], shared as `Rc<Engine>`. It serves
//! `ctx.store` and `ctx.assets` from the local-first mirror and keeps it in step with the
//! backend.
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
//! This file holds the [`Engine`] itself (its state, opening and closing, bucket deletion and
//! the collection pass-through); its other methods are spread over one file per job, each an
//! `impl Engine` block:
//!
//! | file | job | touches |
//! |---|---|---|
//! | `doc.rs` | one document bucket in memory (core `BucketQueue`), its snapshot, record, conflict and contract errors | — |
//! | `documents.rs` | reads (`doc_get`, `doc_get_js`, `warm`, `peek`, `known_contract`) and writes (`doc_write`, `doc_set`), the group commit (`persist`) | IndexedDB |
//! | `outbox.rs` | adoption of the shared outbox and the settle transitions (confirmed, stale, rolled back, superseded, dropped) | IndexedDB |
//! | `flush.rs` | the flush loop, backoff, the Web Lock, one PUT per bucket batch | network |
//! | `revalidate.rs` | first fetches, batched metadata checks, revalidation, focus/visibility/online re-checks | network |
//! | `assets.rs` | asset lists read through, upload, delete | network |
//! | `asset_lists.rs` | asset lists in memory and the mirror, URL freshness, a deleted asset bucket | IndexedDB |
//! | `tabs.rs` | the cross-tab messages and their BroadcastChannel | — |
//! | `events.rs` | subscriptions, event delivery, `replay` | — |
//!
//! # Tabs
//! Tabs of the same user share the IndexedDB mirror; events go to the other tabs over the
//! BroadcastChannel [`channel_name`], and a Web Lock ([`lock_name`]) lets one tab at a time
//! send outbox entries (without Web Locks every tab flushes; the server's mutation-id dedupe
//! keeps that correct). Every flush pass first adopts the whole shared outbox, and a tab
//! that committed writes says so on the channel, so whichever tab is open sends every tab's
//! writes, also those of a tab that closed since.

mod asset_lists;
mod assets;
mod doc;
mod documents;
mod events;
mod flush;
mod outbox;
mod revalidate;
mod tab_wire;
mod tabs;

pub use asset_lists::URL_FRESH_MARGIN_MS;
pub use doc::{DocSnapshot, DocView};
pub use documents::WriteOptions;
pub use events::{AssetEvent, DocEvent, EventKind, SubscriptionId};
pub use flush::{lock_name, BACKOFF_BASE_MS, BACKOFF_MAX_MS, MAX_COALESCED, MAX_SERVER_ERRORS};
pub use revalidate::{BATCH_WINDOW_MS, DEDUPE_MS, RECHECK_THROTTLE_MS};
pub use tabs::channel_name;

use crate::cache::Cache;
use crate::http::Api;
use crate::mirror::{DocRecord, Mirror, OutboxRecord};
use crate::web::{local_storage_get, local_storage_set, with_lock, Channel, EventListener};
use asset_lists::AssetState;
use doc::Doc;
use events::{AssetCb, DocCb};
use futures::channel::oneshot;
use futures::future::{LocalBoxFuture, Shared};
use monodit_core::api::{CollectionOp, Contract, DeletedBucket};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;

/// localStorage key prefix of "token fingerprint → user id" (see [`Engine::open`]).
pub const KNOWN_USER_PREFIX: &str = "monodit-bridge:user:";

/// A resolved bucket with the contract of the binding that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRef {
    /// The bucket id.
    pub bucket_id: String,
    /// Backend, schema id and version of the binding.
    pub contract: Contract,
}

type Waiter = oneshot::Sender<Result<DocSnapshot, Error>>;
type Load = Shared<LocalBoxFuture<'static, Result<(), Error>>>;

/// Everything the engine's files share, behind one `RefCell`. Grouped by the file that mainly
/// owns each field.
#[derive(Default)]
struct State {
    // documents.rs (and doc.rs): buckets in memory, loads in flight, the group commit.
    docs: HashMap<String, Doc>,
    doc_loads: HashMap<String, Load>,
    /// Buckets to warm from the mirror at the end of this task, in one transaction (each with
    /// the load a read of it waits for), and the signal that the transaction is done.
    warm_queue: Vec<(String, Load)>,
    warm_done: Option<(oneshot::Sender<()>, Shared<oneshot::Receiver<()>>)>,
    /// Writes waiting for the mirror (see `Engine::persist`).
    persist_queue: Vec<(DocRecord, OutboxRecord)>,
    /// Whether a group commit is running.
    persisting: bool,
    /// Makes the clock-based `seq` of writes made in the same millisecond distinct.
    seq: u64,
    // outbox.rs: the `doc_write` futures waiting for their write to settle, by mutation id.
    waiters: HashMap<String, Vec<Waiter>>,
    // flush.rs: the flusher runs once at a time; `wake` cuts its backoff sleep short.
    flushing: bool,
    flush_again: bool,
    wake: Option<oneshot::Sender<()>>,
    // revalidate.rs: the next metadata batch and the event-driven re-checks.
    want_docs: BTreeSet<String>,
    want_assets: BTreeSet<String>,
    batch_scheduled: bool,
    last_recheck: f64,
    page_had_focus: bool,
    // assets.rs: asset lists in memory and loads in flight.
    assets: HashMap<String, AssetState>,
    asset_loads: HashMap<String, Load>,
    // events.rs: subscribers per bucket and the last subscription id handed out.
    doc_subs: HashMap<String, Vec<(u64, DocCb)>>,
    asset_subs: HashMap<String, Vec<(u64, AssetCb)>>,
    next_id: u64,
}

impl State {
    /// The bucket's document state, created empty on first use.
    fn doc_mut(&mut self, bucket_id: &str) -> &mut Doc {
        self.docs.entry(bucket_id.to_string()).or_default()
    }
}

/// The host-side data engine. See the module docs for its rules.
pub struct Engine {
    api: Api,
    user_id: String,
    mirror: Rc<Mirror>,
    cache: Cache,
    me: Weak<Engine>,
    state: RefCell<State>,
    /// The re-check listeners (`revalidate`), removed when dropped.
    listeners: RefCell<Vec<EventListener>>,
    /// The cross-tab channel (`tabs`), closed when dropped.
    channel: RefCell<Option<Channel>>,
    closed: Cell<bool>,
    /// Minimum spacing of event-driven re-checks (ms); [`RECHECK_THROTTLE_MS`] by default.
    recheck_throttle_ms: Cell<f64>,
}

fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
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

    /// A collection operation (`POST /v1/collections/{pluginId}/{collection}/{op}`, see
    /// `monodit_core::api`), passed through to the backend (collections are not mirrored:
    /// queries and cursors are the server's).
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

    /// Removes listeners, closes the channel and the database, rejects pending `doc_set`
    /// futures with CLOSED (their writes stay in the durable outbox). Idempotent.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        // Dropped: the listeners are removed and the channel is closed.
        self.listeners.borrow_mut().clear();
        drop(self.channel.borrow_mut().take());
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
