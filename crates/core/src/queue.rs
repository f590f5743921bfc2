//! One bucket's document queue as the host keeps it: the confirmed document, this browser's
//! queued writes (oldest first) and the transitions a write goes through (queued, sent,
//! confirmed, superseded, stale, rolled back), as a pure state machine. The SDK's sync engine
//! owns IndexedDB, the network, tabs and events, and only applies what this module decides,
//! so every rule runs natively in `cargo test` (see also `tests/outbox_model.rs`).
//!
//! The rules themselves (which write supersedes which, what a send is conditioned on, what a
//! failure becomes) are in [`crate::outbox`]; this module applies them to a list.

use crate::api::Contract;
use crate::outbox::{
    self, Admission, Condition, Failure, Settled, Standing, View, WriteFacts, MAX_SERVER_ERRORS,
};
use crate::ErrorCode;

/// One queued write of a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedWrite<V> {
    /// Client-generated id the server dedupes retries with.
    pub mutation_id: String,
    /// The document it writes (replaced whole).
    pub value: V,
    /// The contract it writes with.
    pub contract: Contract,
    /// Creation order across the browser's tabs (oldest first).
    pub seq: f64,
    /// Whether its outbox entry is on disk. Only a durable write can be settled by another
    /// tab (which deletes the entry), so only then does a missing entry mean "already sent";
    /// and only durable writes join a coalesced send.
    pub durable: bool,
    /// INTERNAL answers so far (this page); see [`MAX_SERVER_ERRORS`].
    pub server_errors: u32,
    /// The bucket version it was made on (raised when a write it was made on confirms).
    pub base_version: u64,
    /// Plain `set()` or conditional (`ifVersion` / `update()`).
    pub condition: Condition,
    /// A send failed before, or it came from the outbox (an earlier page or another tab).
    pub replay: bool,
    /// A conditional write's read token: the write its value was computed on.
    pub after: Option<f64>,
    /// The mutation id of a PUT that carried this write and whose outcome is unknown (the
    /// connection failed: the server may have stored it). Until that settles, the same
    /// writes go out again under that id (see [`BucketQueue::next_batch`]).
    pub sent_as: Option<String>,
    /// Read back from the shared outbox: made by another tab or an earlier page. Another
    /// tab's writes were computed on that tab's view, so while this page has writes of its
    /// own queued they are sent in turn but never become the value this page shows.
    pub adopted: bool,
}

impl<V> QueuedWrite<V> {
    /// The facts the outbox rules look at.
    pub fn facts(&self) -> WriteFacts {
        WriteFacts {
            seq: self.seq,
            base_version: self.base_version,
            condition: self.condition,
            replay: self.replay,
            after: self.after,
        }
    }
}

/// The writes the next PUT of a bucket settles: its oldest queued write and the ones that
/// coalesce right behind it; the newest value goes out.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The mutation ids it settles, oldest first.
    pub ids: Vec<String>,
    /// The index of its newest write (the one whose value and mutation id are sent).
    pub last: usize,
    /// Whether its oldest write's outbox entry is on disk.
    pub head_durable: bool,
    /// The condition the PUT carries ([`outbox::expected_version`]).
    pub expected_version: Option<u64>,
}

/// What to do after a send of a [`Batch`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Keep the writes queued (now replays) and retry with backoff, the oldest alone first.
    Retry,
    /// Send the bucket's writes one by one from now on, so exactly the refused one rolls back.
    Split,
    /// A newer version reached the server: fetch it, then [`BucketQueue::settle_stale`].
    Stale,
    /// Roll back the batch's oldest write with the error ([`BucketQueue::roll_back`]).
    RollBack,
}

/// A bucket's document state on the host: what the server confirmed, and this browser's
/// queued writes on top.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketQueue<V> {
    /// The contract the bucket was created with, when known.
    pub contract: Option<Contract>,
    /// The last document the server confirmed.
    pub confirmed_value: V,
    /// Its version (0 = never written).
    pub confirmed_version: u64,
    /// Whether the confirmed part came from the mirror or the server (else it is a guess).
    pub known: bool,
    /// The newest write of this browser the server confirmed.
    pub settled: Settled,
    /// Queued writes, oldest first.
    pub pending: Vec<QueuedWrite<V>>,
    /// Send one write per PUT until the next settles (a coalesced PUT was refused).
    pub solo: bool,
}

impl<V: Clone + Default> Default for BucketQueue<V> {
    fn default() -> Self {
        BucketQueue {
            contract: None,
            confirmed_value: V::default(),
            confirmed_version: 0,
            known: false,
            settled: Settled::default(),
            pending: Vec::new(),
            solo: false,
        }
    }
}

impl<V: Clone + Default> BucketQueue<V> {
    /// What a conditional write is admitted against ([`outbox::admit`]): the write shown is
    /// the one an update read and computes on.
    pub fn view(&self) -> View {
        View {
            confirmed_version: self.confirmed_version,
            known: self.known,
            settled: self.settled,
            newest: self.shown().map(QueuedWrite::facts),
        }
    }

    /// The queued write whose value the bucket shows: the newest one this page made, else the
    /// newest adopted one (another tab's chain of updates lacks this page's items, see
    /// [`QueuedWrite::adopted`]).
    pub fn shown(&self) -> Option<&QueuedWrite<V>> {
        self.pending
            .iter()
            .rev()
            .find(|p| !p.adopted)
            .or(self.pending.last())
    }

    /// Whether this page has writes of its own queued (not adopted from the outbox).
    pub fn has_own(&self) -> bool {
        self.pending.iter().any(|p| !p.adopted)
    }

    /// What the bucket shows: the [`BucketQueue::shown`] write, else the confirmed document.
    pub fn visible(&self) -> &V {
        self.shown().map_or(&self.confirmed_value, |p| &p.value)
    }

    /// The bucket no longer exists on the server: nothing confirmed, no contract.
    pub fn forget_confirmed(&mut self) {
        self.contract = None;
        self.confirmed_value = V::default();
        self.confirmed_version = 0;
        self.known = true;
    }

    /// The `seq` a write made now gets: `clock_seq`, unless the clock went back below a
    /// write this browser already knows of (a new write must never count as superseded).
    pub fn next_seq(&self, clock_seq: f64) -> f64 {
        let newest = self.pending.last().map_or(self.settled.seq, |p| p.seq);
        clock_seq.max(newest.max(self.settled.seq) + 1.0)
    }

    /// Where a new write goes: `(base_version, condition, after)` for a plain write
    /// (`if_version` `None`) or an admitted conditional one; `Err(())` when a conditional
    /// write is stale at once (CONFLICT with the current value, see [`outbox::admit`]).
    #[allow(clippy::result_unit_err)]
    pub fn place(
        &self,
        if_version: Option<u64>,
        if_head: Option<Option<f64>>,
    ) -> Result<(u64, Condition, Option<f64>), ()> {
        match if_version {
            None => Ok((self.confirmed_version, Condition::Plain, None)),
            Some(v) => match outbox::admit(v, if_head, &self.view()) {
                Admission::Queue {
                    base_version,
                    after,
                } => Ok((base_version, Condition::IfVersion, after)),
                Admission::Stale => Err(()),
            },
        }
    }

    /// Queues a write (newest).
    pub fn push(&mut self, write: QueuedWrite<V>) {
        self.pending.push(write);
    }

    /// Takes a write read back from the shared outbox (an earlier page's or another tab's)
    /// into the queue, in `seq` order; false when it is already queued here. A write held
    /// already takes the outbox's mark of a PUT with an unknown outcome
    /// ([`QueuedWrite::sent_as`]): another tab may have sent it meanwhile.
    pub fn adopt(&mut self, write: QueuedWrite<V>) -> bool {
        if let Some(held) = self
            .pending
            .iter_mut()
            .find(|p| p.mutation_id == write.mutation_id)
        {
            if held.sent_as.is_none() && write.sent_as.is_some() {
                held.sent_as = write.sent_as;
                held.replay = true;
            }
            return false;
        }
        let at = self.pending.partition_point(|p| p.seq <= write.seq);
        self.pending.insert(at, write);
        true
    }

    /// Applies the outbox rules after `settled` moved: superseded writes are removed
    /// (returned: settled by the newer write), the others rebased ([`outbox::standings`]).
    pub fn apply_settled(&mut self) -> Vec<String> {
        let facts: Vec<WriteFacts> = self.pending.iter().map(QueuedWrite::facts).collect();
        let mut standings = outbox::standings(&facts, self.settled).into_iter();
        let mut superseded = Vec::new();
        self.pending.retain_mut(|p| match standings.next() {
            Some(Standing::Superseded) => {
                superseded.push(p.mutation_id.clone());
                false
            }
            Some(Standing::Queued { base_version }) => {
                p.base_version = base_version;
                true
            }
            None => true,
        });
        superseded
    }

    /// Merges what another tab confirmed (its newest confirmed write): ours older than it are
    /// superseded (returned), newer ones rebased. Nothing when it is not newer.
    pub fn merge_settled(&mut self, newest: Settled) -> Vec<String> {
        if newest.seq > self.settled.seq {
            self.settled = newest;
            self.apply_settled()
        } else {
            Vec::new()
        }
    }

    /// The next PUT: the oldest write and, unless [`BucketQueue::solo`], up to `max - 1`
    /// durable writes with the same contract that coalesce right behind it.
    ///
    /// Writes whose PUT's outcome is unknown ([`QueuedWrite::sent_as`]) go first, as exactly
    /// that PUT again: the server answers a stored one from its record by the mutation id,
    /// while any other id (a newer write joined, or the oldest alone) would meet the version
    /// the lost PUT created as a CONFLICT. This holds across tabs: the mark is in the outbox.
    pub fn next_batch(&self, max: usize) -> Option<Batch> {
        if let Some(batch) = self.in_doubt_batch() {
            return Some(batch);
        }
        let first = self.pending.first()?;
        let n = if self.solo {
            1
        } else {
            1 + self
                .pending
                .windows(2)
                .take(max.saturating_sub(1))
                .take_while(|w| {
                    w[1].durable
                        && w[1].contract == first.contract
                        && w[1].sent_as.is_none()
                        && outbox::coalesces(&w[0].facts(), &w[1].facts())
                })
                .count()
        };
        let facts: Vec<WriteFacts> = self.pending[..n].iter().map(QueuedWrite::facts).collect();
        Some(Batch {
            ids: self.pending[..n]
                .iter()
                .map(|p| p.mutation_id.clone())
                .collect(),
            last: n - 1,
            head_durable: first.durable,
            expected_version: outbox::expected_version(&facts),
        })
    }

    /// The PUT whose outcome is unknown, again: the queued writes it carried, sent under its
    /// mutation id. None when no such PUT is pending (its writes settled meanwhile).
    fn in_doubt_batch(&self) -> Option<Batch> {
        let sent = self.pending.iter().find_map(|p| p.sent_as.as_deref())?;
        let last = self.pending.iter().position(|p| p.mutation_id == sent)?;
        let group: Vec<&QueuedWrite<V>> = self
            .pending
            .iter()
            .filter(|p| p.sent_as.as_deref() == Some(sent))
            .collect();
        let facts: Vec<WriteFacts> = group.iter().map(|p| p.facts()).collect();
        Some(Batch {
            ids: group.iter().map(|p| p.mutation_id.clone()).collect(),
            last,
            head_durable: group.first().is_some_and(|p| p.durable),
            expected_version: outbox::expected_version(&facts),
        })
    }

    /// The server stored `value` (the batch's newest write, `seq`) as `version`: the writes
    /// in `ids` are confirmed, and so are older ones it supersedes. Returns every settled id
    /// (empty when another tab settled them already).
    pub fn confirm(
        &mut self,
        ids: &[String],
        value: V,
        contract: Contract,
        seq: f64,
        version: u64,
    ) -> Vec<String> {
        self.solo = false;
        let mut settled: Vec<String> = self
            .pending
            .iter()
            .filter(|q| ids.contains(&q.mutation_id))
            .map(|q| q.mutation_id.clone())
            .collect();
        if settled.is_empty() {
            return settled;
        }
        self.pending.retain(|q| !ids.contains(&q.mutation_id));
        if version >= self.confirmed_version {
            self.confirmed_value = value;
            self.confirmed_version = version;
            self.contract = Some(contract);
            self.known = true;
        }
        self.settled = self.settled.newest(Settled { seq, version });
        settled.extend(self.apply_settled());
        settled
    }

    /// What a send of `batch` that failed with `code` becomes; counts an INTERNAL answer
    /// against the batch's oldest write and marks the batch as replays on a retry.
    pub fn on_failure(&mut self, batch: &Batch, code: ErrorCode) -> AfterFailure {
        let server_errors = if code == ErrorCode::Internal {
            batch
                .ids
                .first()
                .and_then(|id| self.pending.iter_mut().find(|p| &p.mutation_id == id))
                .map_or(MAX_SERVER_ERRORS, |p| {
                    p.server_errors += 1;
                    p.server_errors
                })
        } else {
            0
        };
        match outbox::on_failure(code, batch.ids.len() > 1, server_errors) {
            Failure::Retry => {
                // From now on its writes are replays, sent on their base version (a newer
                // version may reach the server before they do). The outcome is unknown (the
                // server may have stored it and lost the answer), so the same PUT goes out
                // again first, under the same mutation id (`sent_as`, see `next_batch`).
                let sent = batch.ids.last().cloned(); // the id the PUT carried
                for p in self
                    .pending
                    .iter_mut()
                    .filter(|p| batch.ids.contains(&p.mutation_id))
                {
                    p.replay = true;
                    if p.sent_as.is_none() {
                        p.sent_as = sent.clone();
                    }
                }
                AfterFailure::Retry
            }
            // The server answered: the PUT's outcome is known (it stored nothing).
            failure => {
                for p in self
                    .pending
                    .iter_mut()
                    .filter(|p| batch.ids.contains(&p.mutation_id))
                {
                    p.sent_as = None;
                }
                match failure {
                    Failure::Split => {
                        self.solo = true;
                        AfterFailure::Split
                    }
                    Failure::Stale => AfterFailure::Stale,
                    _ => AfterFailure::RollBack,
                }
            }
        }
    }

    /// The batch `ids` lost a race (CONFLICT) and the server's document is now the confirmed
    /// one: its writes are removed, and so is every conditional write computed on one of
    /// them, directly or through a chain (its value carries the stale write's change on a
    /// version the server no longer has, and showing it would hand that change to the
    /// re-runs twice). Returns them all, oldest first; each rejects CONFLICT with what the
    /// bucket shows now, so each `update()` runs again on it.
    pub fn settle_stale(&mut self, ids: &[String]) -> Vec<String> {
        self.solo = false;
        let mut stale: Vec<f64> = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for p in &self.pending {
            let chained =
                p.condition == Condition::IfVersion && p.after.is_some_and(|a| stale.contains(&a));
            if chained || ids.contains(&p.mutation_id) {
                stale.push(p.seq);
                gone.push(p.mutation_id.clone());
            }
        }
        self.remove(&gone)
    }

    /// Removes one write that failed for good (or that another tab settled); false when it
    /// was not queued here.
    pub fn roll_back(&mut self, mutation_id: &str) -> bool {
        self.solo = false;
        let before = self.pending.len();
        self.pending.retain(|q| q.mutation_id != mutation_id);
        self.pending.len() != before
    }

    /// Removes the writes in `ids` that are queued here; returns those.
    pub fn remove(&mut self, ids: &[String]) -> Vec<String> {
        let gone: Vec<String> = self
            .pending
            .iter()
            .filter(|p| ids.contains(&p.mutation_id))
            .map(|p| p.mutation_id.clone())
            .collect();
        self.pending.retain(|p| !ids.contains(&p.mutation_id));
        gone
    }

    /// Its outbox entry committed; false when the write is no longer queued (its bucket was
    /// deleted meanwhile: the caller removes the entry again).
    pub fn mark_durable(&mut self, mutation_id: &str) -> bool {
        let mut found = false;
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.mutation_id == mutation_id)
        {
            p.durable = true;
            found = true;
        }
        found
    }

    /// The bucket was deleted on the server: every queued write goes (returned, each rolls
    /// back NOT_FOUND) and nothing is confirmed any more, so no queued write re-creates it.
    pub fn delete(&mut self) -> Vec<QueuedWrite<V>> {
        self.forget_confirmed();
        self.solo = false;
        std::mem::take(&mut self.pending)
    }
}
