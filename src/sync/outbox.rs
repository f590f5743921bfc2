//! The durable outbox (IndexedDB, shared by the user's tabs) and how a write leaves it:
//! adoption of every tab's entries, and the settle transitions (confirmed, stale, rolled back,
//! superseded, dropped with a deleted bucket) applied to memory, the subscribers, the waiting
//! `doc_write` futures and the mirror. IndexedDB only; the sends are `flush`'s.
//!
//! **No lost update** (`monodit_core::outbox`): each write records its base version. Replays
//! and conditional writes are sent with `expectedVersion`; a CONFLICT rolls the write back
//! with the server's document in the error (stale). A queued write older than one this
//! browser already got confirmed is superseded: settled as confirmed, never sent.

use super::doc::{Doc, Pending};
use super::events::EventKind;
use super::tabs::TabMessage;
use super::{warn, DocSnapshot, Engine};
use crate::mirror::OutboxRecord;
use monodit_core::queue::QueuedWrite;
use monodit_core::{Error, ErrorCode};
use std::collections::BTreeSet;

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
        adopted: true,
        sent_as: e.sent_as,
    }
}

impl Engine {
    /// Loads durable writes left by an earlier page (or engine) and sends them.
    pub(super) async fn resume_outbox(&self) {
        self.adopt_outbox().await;
        if self.pending_writes() > 0 {
            self.kick_flush();
        }
    }

    /// Takes every write of the shared outbox this tab does not hold yet into its queue: left
    /// by an earlier page, or made by another tab, open or closed (so a write never waits for
    /// the tab that made it). Entries superseded by a newer confirmed write are settled and
    /// removed instead of sent.
    pub(super) async fn adopt_outbox(&self) {
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

    /// Whether the bucket's oldest durable write `head` has left the shared outbox: another
    /// tab sent and settled it (its broadcast may still be on the way). It is then forgotten
    /// here and a forced check picks up the server's state.
    pub(super) async fn settled_elsewhere(&self, bucket_id: &str, head: &str) -> bool {
        if !self.mirror.is_persistent() || self.mirror.outbox_contains(head).await {
            return false;
        }
        if !self.closed.get() {
            self.drop_settled_elsewhere(bucket_id, head);
        }
        true
    }

    fn drop_settled_elsewhere(&self, bucket_id: &str, mutation_id: &str) {
        if let Some(doc) = self.state.borrow_mut().docs.get_mut(bucket_id) {
            doc.q.remove(&[mutation_id.to_string()]);
        }
        // Not resolved here: that tab may have confirmed it or rolled it back (a stale
        // update must re-run, never resolve as saved). Its broadcast, posted before it
        // deleted the entry, settles our waiter with the real outcome.
        self.want_check(&[bucket_id.to_string()], &[], true);
    }

    pub(super) fn resolve_waiters(&self, mutation_id: &str, result: Result<DocSnapshot, Error>) {
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
    pub(super) async fn settle_confirmed(
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

    /// The server holds a newer version than the batch was based on (CONFLICT): the batch is
    /// stale. Its writes roll back with CONFLICT instead of overwriting that version; the
    /// sender installs the server's document first (`refetch_doc`), so the rollback shows it
    /// and the error carries it (`{value, version}`) for a caller that wants to merge and
    /// write again.
    pub(super) async fn settle_stale(
        &self,
        bucket_id: &str,
        ids: &[String],
        expected: Option<u64>,
    ) {
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

    pub(super) async fn settle_rollback(&self, bucket_id: &str, mutation_id: &str, err: Error) {
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

    /// The document bucket is gone on the server: drop its pending writes, show `null`.
    /// Writes still waiting for the group commit are dropped from its queue; one being
    /// committed right now is removed again by `persist` once it finds it no longer pending.
    pub(super) async fn forget_doc(&self, bucket_id: &str) {
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
}
