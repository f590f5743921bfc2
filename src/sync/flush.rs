//! The flush loop: sends the queued writes of every bucket (core's `BucketQueue` picks each
//! bucket's next batch and decides what a failure becomes), under the Web Lock that lets one
//! of the user's tabs send at a time, with bounded exponential backoff after transient
//! failures. Network only (`PUT` of documents); what a settled send does to memory, the
//! subscribers and the outbox is `outbox`'s.
//!
//! Each bucket's writes are sent strictly in the order they were made (one in flight per
//! bucket; buckets in parallel), so the last writer wins and a rollback removes exactly the
//! failed write. A transient failure (NETWORK, TIMEOUT, RATE_LIMITED, 5xx) keeps the write and
//! retries after [`BACKOFF_BASE_MS`] .. [`BACKOFF_MAX_MS`] (`online`, visibility and focus
//! re-checks retry at once). Being offline can last for days, so network failures are retried
//! for as long as it takes; a server that keeps answering INTERNAL for one write is not going
//! to change its mind, so after [`MAX_SERVER_ERRORS`] such answers the write is rolled back
//! with INTERNAL like a permanent failure (the count starts over when the page reloads).

use super::doc::Pending;
use super::{warn, Engine};
use crate::web::{sleep, with_lock};
use futures::channel::oneshot;
use monodit_core::api::PutDocument;
use monodit_core::outbox;
use monodit_core::queue::{AfterFailure, Batch};
use std::collections::HashSet;
use std::rc::Rc;

/// First retry delay of a write that failed transiently.
pub const BACKOFF_BASE_MS: f64 = 500.0;
/// Longest retry delay.
pub const BACKOFF_MAX_MS: f64 = 30_000.0;
/// Most queued writes of one bucket confirmed by one coalesced PUT (see `send_batch`).
pub const MAX_COALESCED: usize = 500;
/// INTERNAL (500) answers to one write after which it is rolled back instead of retried.
pub const MAX_SERVER_ERRORS: u32 = outbox::MAX_SERVER_ERRORS;

/// Web Lock name that serialises outbox flushing across a user's tabs.
pub fn lock_name(user_id: &str) -> String {
    format!("monodit-bridge-outbox:{user_id}")
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
    /// Starts the flusher, or tells the running one to look again; wakes a backoff sleep.
    pub(super) fn kick_flush(&self) {
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
        if batch.head_durable && self.settled_elsewhere(bucket_id, head).await {
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
            AfterFailure::Retry => {
                // The outcome is unknown: whichever tab sends next repeats this PUT (core
                // `QueuedWrite::sent_as`), so the mark goes into the shared outbox.
                if let Err(e) = self.mirror.mark_sent(&batch.ids, &last.mutation_id).await {
                    warn(&format!("monodit-bridge: mirror write failed: {e}"));
                }
                false
            }
            AfterFailure::Split => true,
            AfterFailure::Stale => {
                // The server's document first, so the rollback shows it and its error
                // carries it.
                self.refetch_doc(bucket_id).await;
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
}
