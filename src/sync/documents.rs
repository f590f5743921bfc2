//! Document reads and writes. Reads go memory → IndexedDB → server (the server's side is
//! `revalidate::fetch_base`); writes are shown at once and made durable by a group commit of
//! the mirror document and the outbox entry (`persist`) before the flusher sends them. Memory
//! and IndexedDB; the one server read is delegated.
//!
//! # Writes (`doc_write`)
//! Memory is updated and `optimistic` goes to every subscriber of the bucket on the page at
//! once (and, via BroadcastChannel, to the user's other tabs); then the mirror document and
//! the outbox entry are written in one IndexedDB transaction, and only after it committed is
//! the write PUT with its mutation id (`flush`).
//! Confirmed and optimistic state are kept apart: each bucket holds its confirmed
//! value/version and an ordered queue of pending writes (core's `BucketQueue`):
//! - permanent failure (a non-transient code: QUOTA_EXCEEDED, PLAN_REQUIRED,
//!   INCOMPATIBLE_BUCKET, PAYLOAD_TOO_LARGE, FORBIDDEN, ...): the write leaves the outbox, the
//!   bucket shows the newest *remaining* pending write or else the confirmed value, `rollback`
//!   is emitted, and the future rejects with the code. Because writes are sent in order, every
//!   older write has settled by then, so no older optimistic value is ever resurrected.
//! - transient failure: the write stays in the outbox and is retried (see `flush`).
//!
//! **Offline semantics:** the `doc_write` future stays pending until the server confirms the
//! write (then resolves with the confirmed snapshot) or rejects it permanently (then rejects
//! with the code). The `optimistic` event has already been delivered, so UIs never wait for the
//! network, and the caller's `queued` callback runs once the write is queued (the host then
//! tells the widget to stop timing the call). If the engine is closed (page unload, `close()`)
//! first, the future rejects with CLOSED, but the write stays in the durable outbox and any
//! open tab, or the next `Engine::open` for the same user, sends it (once: the server dedupes
//! the mutation id) and emits `confirmed`.

use super::doc::{check_contract, Doc, DocView};
use super::events::EventKind;
use super::tabs::TabMessage;
use super::{warn, BucketRef, DocSnapshot, Engine};
use crate::mirror::{DocRecord, OutboxRecord};
use crate::web::now;
use futures::channel::oneshot;
use futures::future::{FutureExt, LocalBoxFuture};
use monodit_core::api::{self, Contract};
use monodit_core::queue::QueuedWrite;
use monodit_core::{Error, ErrorCode};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

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

/// The length of a value's JSON text, counted without building it (every write checks it).
fn json_len(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => u64::MAX,
    }
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

impl Engine {
    /// The bucket's current snapshot: memory → IndexedDB → server. A cached answer returns at
    /// once and a background metadata check follows (emitting `revalidated` if the server is
    /// newer). A never-written bucket reads as `null`, version 0. A bucket created with another
    /// contract answers INCOMPATIBLE_BUCKET.
    pub async fn doc_get(&self, b: &BucketRef) -> Result<DocSnapshot, Error> {
        self.doc_read(b, |d| Ok(d.snapshot())).await
    }

    /// [`Engine::doc_get`] for a widget's port: the value comes as a JS value, reused while the
    /// bucket shows an equal value (a widget polling `get` costs no encoding).
    pub async fn doc_get_js(&self, b: &BucketRef) -> Result<DocView, Error> {
        self.doc_read(b, |d| {
            Ok(DocView {
                value: d.visible_js()?,
                version: d.q.confirmed_version,
                pending: !d.q.pending.is_empty(),
                head: d.q.view().head(),
            })
        })
        .await
    }

    /// Memory → IndexedDB → server, then `read` on the loaded bucket.
    async fn doc_read<T>(
        &self,
        b: &BucketRef,
        read: impl FnOnce(&mut Doc) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let cached = {
            let st = self.state.borrow();
            st.docs
                .get(&b.bucket_id)
                .filter(|d| d.q.known)
                .map(|d| d.q.contract.clone())
        };
        if let Some(contract) = cached {
            check_contract(b, contract.as_ref())?;
            self.want_check(std::slice::from_ref(&b.bucket_id), &[], false);
        } else {
            self.load_doc(b).await?;
        }
        let mut st = self.state.borrow_mut();
        let doc = st
            .docs
            .get_mut(&b.bucket_id)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "document vanished while loading"))?;
        check_contract(b, doc.q.contract.as_ref())?;
        read(doc)
    }

    /// Starts loading a bucket's mirrored document into memory, without any request: the host
    /// calls it when it mounts a widget, so the widget's first `get` after a page reload is
    /// answered from memory instead of waiting for IndexedDB. The buckets warmed in one task
    /// (a page mounting its widgets) are read in one IndexedDB transaction, and a read of one
    /// of them meanwhile waits for it instead of reading again. A bucket the mirror does not
    /// hold is left for the widget's first read.
    pub fn warm(&self, bucket_id: &str) {
        if self.closed.get() {
            return;
        }
        let Some(me) = self.rc() else { return };
        let mut st = self.state.borrow_mut();
        if st.docs.contains_key(bucket_id) || st.doc_loads.contains_key(bucket_id) {
            return;
        }
        let first = st.warm_done.is_none();
        let done = st
            .warm_done
            .get_or_insert_with(|| {
                let (tx, rx) = oneshot::channel();
                (tx, rx.shared())
            })
            .1
            .clone();
        let (engine, bucket) = (me.clone(), bucket_id.to_string());
        let load: LocalBoxFuture<'static, Result<(), Error>> = Box::pin(async move {
            let _ = done.await;
            let known = engine
                .state
                .borrow()
                .docs
                .get(&bucket)
                .is_some_and(|d| d.q.known);
            if !known {
                // Not in the mirror: this read asks the server.
                return engine.load_doc_uncached(&bucket).await;
            }
            engine.want_check(std::slice::from_ref(&bucket), &[], false);
            Ok(())
        });
        let load = load.shared();
        st.doc_loads.insert(bucket_id.to_string(), load.clone());
        st.warm_queue.push((bucket_id.to_string(), load));
        drop(st);
        if first {
            // After the rest of this task (the page's other mounts) queued theirs.
            wasm_bindgen_futures::spawn_local(async move { me.warm_queued().await });
        }
    }

    async fn warm_queued(&self) {
        let (queue, done) = {
            let mut st = self.state.borrow_mut();
            (std::mem::take(&mut st.warm_queue), st.warm_done.take())
        };
        let buckets: Vec<String> = queue.iter().map(|(b, _)| b.clone()).collect();
        for rec in self.mirror.get_docs(&buckets).await {
            if rec.confirmed_known {
                let bucket = rec.bucket_id.clone();
                self.merge_base(&bucket, Doc::from_record(rec));
            }
        }
        if let Some((tx, _)) = done {
            let _ = tx.send(());
        }
        // Reads that started meanwhile hold their handle; later ones take the usual path.
        let mut st = self.state.borrow_mut();
        for (bucket, load) in queue {
            if st.doc_loads.get(&bucket).is_some_and(|l| l.ptr_eq(&load)) {
                st.doc_loads.remove(&bucket);
            }
        }
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
        let base = match self.fetch_base(bucket_id).await {
            Ok(base) => base,
            Err(e) if e.code.is_transient() && mirrored.is_some() => {
                // Offline with only local writes: show them (pending) rather than fail.
                if let Some(rec) = mirrored {
                    self.merge_base(bucket_id, Doc::from_record(rec));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let rec = self.merge_base(bucket_id, base);
        if let Err(e) = self.mirror.put_doc(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        Ok(())
    }

    /// Installs a loaded confirmed base under any pending writes made meanwhile.
    pub(super) fn merge_base(&self, bucket_id: &str, base: Doc) -> DocRecord {
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

    pub(super) async fn apply_revalidated(
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

    /// The server has nothing for a bucket this tab never read from it: the placeholder base
    /// (`null`, version 0) is the truth, and the mirror records that it is known.
    pub(super) async fn learn_missing(&self, bucket_id: &str) {
        let rec = {
            let mut st = self.state.borrow_mut();
            st.docs.get_mut(bucket_id).map(|d| {
                d.q.known = true;
                d.record(bucket_id)
            })
        };
        if let Some(rec) = rec {
            if let Err(e) = self.mirror.put_doc(&rec).await {
                warn(&format!("monodit-bridge: mirror write failed: {e}"));
            }
        }
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
        let size = json_len(&value);
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
                adopted: false,
                sent_as: None,
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
                sent_as: None,
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

    /// Its outbox entry committed (until then a missing entry proves nothing).
    /// Returns false when the write is no longer pending here (its bucket was deleted while
    /// the entry was being committed): the caller removes the entry again.
    fn mark_durable(&self, bucket_id: &str, mutation_id: &str) -> bool {
        let mut st = self.state.borrow_mut();
        st.docs
            .get_mut(bucket_id)
            .is_some_and(|doc| doc.q.mark_durable(mutation_id))
    }
}
