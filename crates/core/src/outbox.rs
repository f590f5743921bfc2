//! Rules of the host's document outbox: which queued write supersedes which, what version a
//! write is conditioned on, and what a failed send becomes. Pure, so the SDK's `sync` engine
//! (which owns the queue, IndexedDB and the network) only applies these answers.
//!
//! Every queued write records the version of the bucket it was made on (`base_version`: the
//! last confirmed version the writing tab knew). A browser's writes to one bucket form one
//! chain, oldest first: each was made on top of the ones before it, so when an older write of
//! the chain is confirmed at version `v`, the newer ones are now based on `v` ([`standing`]).
//!
//! - **Superseded**: a write older than one this browser already got confirmed (any tab) would
//!   put an older value over a newer one; it is never sent and counts as settled by the newer
//!   write.
//! - **Conditional**: a replayed write (a send of it failed before, or it was queued by an
//!   earlier page or another tab) and every `ifVersion`/`update()` write goes out with
//!   `expectedVersion = base` ([`expected_version`]); a fresh plain `set()` is last writer wins.
//! - **Stale**: the server answered CONFLICT, so a newer version reached it from elsewhere;
//!   the write is rolled back with CONFLICT instead of overwriting that version ([`on_failure`]).

use crate::ErrorCode;
use serde::{Deserialize, Serialize};

/// INTERNAL (500) answers to one write after which it is rolled back instead of retried: a
/// server that keeps failing one write is not going to change its mind.
pub const MAX_SERVER_ERRORS: u32 = 5;

/// What a queued write is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Condition {
    /// A plain `set()`: last writer wins while fresh, conditional on its base once replayed.
    #[default]
    Plain,
    /// `set(value, {ifVersion})` or `update()`: always conditional on its base.
    IfVersion,
}

/// The facts of one queued write that the rules look at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteFacts {
    /// Creation order across the browser's tabs (oldest first).
    pub seq: f64,
    /// The bucket version the write was made on.
    pub base_version: u64,
    /// Plain or conditional.
    pub condition: Condition,
    /// A replay: a send of it failed before, or it comes from an earlier page's or another
    /// tab's outbox.
    pub replay: bool,
}

/// The newest write of this browser that the server confirmed for a bucket (kept with the
/// mirrored document, so every tab and every later page knows it).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    /// The confirmed write's `seq` (0 = none yet).
    pub seq: f64,
    /// The version the server gave it.
    pub version: u64,
}

impl Settled {
    /// The newer of two records (by `seq`): tabs and pages merge what each of them saw.
    pub fn newest(self, other: Settled) -> Settled {
        if other.seq > self.seq {
            other
        } else {
            self
        }
    }
}

/// What a queued write is, given the newest confirmed write of the same bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Older than a confirmed write: never send it (it is settled by the newer one).
    Superseded,
    /// Still to be sent, based on this version.
    Queued {
        /// The write's base after the confirmed write (never lower than before).
        base_version: u64,
    },
}

/// Whether `w` is superseded by `settled`, else the version it is now based on.
pub fn standing(w: &WriteFacts, settled: Settled) -> Standing {
    if settled.seq > 0.0 && w.seq < settled.seq {
        Standing::Superseded
    } else if w.seq > settled.seq {
        Standing::Queued {
            base_version: w.base_version.max(settled.version),
        }
    } else {
        Standing::Queued {
            base_version: w.base_version,
        }
    }
}

/// Whether `next` may be confirmed by the same PUT as the batch starting at `head` (the
/// newest value of a batch goes out; the caller also requires the same contract): only
/// writes made on the same version, so one condition fits them all.
pub fn coalesces(head: &WriteFacts, next: &WriteFacts) -> bool {
    head.base_version == next.base_version
}

/// The `expectedVersion` of a PUT that settles `batch` (oldest first): the batch's base when
/// any of its writes is conditional or a replay, none when all are fresh plain sets.
pub fn expected_version(batch: &[WriteFacts]) -> Option<u64> {
    let head = batch.first()?;
    batch
        .iter()
        .any(|w| w.condition == Condition::IfVersion || w.replay)
        .then_some(head.base_version)
}

/// An `ifVersion` the host can refuse without asking the server: versions only grow, so one
/// older than the confirmed version the host already knows has lost the race.
pub fn stale_at_once(if_version: u64, known_version: Option<u64>) -> bool {
    known_version.is_some_and(|known| if_version < known)
}

/// What a failed send becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Keep the writes queued and retry with backoff.
    Retry,
    /// A coalesced send was refused: send its writes one by one, so exactly the refused write
    /// rolls back.
    Split,
    /// A newer version reached the server: roll the batch back with CONFLICT (its writes
    /// share one base, so each would lose the same race).
    Stale,
    /// Roll the write back with the error's code.
    RollBack,
}

/// What a send that failed with `code` becomes; `batched` when it carried several writes,
/// `server_errors` the INTERNAL answers to its oldest write so far, this one included.
pub fn on_failure(code: ErrorCode, batched: bool, server_errors: u32) -> Failure {
    match code {
        ErrorCode::Conflict => Failure::Stale,
        c if batched && !c.is_transient() => Failure::Split,
        ErrorCode::Internal if server_errors < MAX_SERVER_ERRORS => Failure::Retry,
        ErrorCode::Internal => Failure::RollBack,
        c if c.is_transient() => Failure::Retry,
        _ => Failure::RollBack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(seq: f64, base: u64, condition: Condition, replay: bool) -> WriteFacts {
        WriteFacts {
            seq,
            base_version: base,
            condition,
            replay,
        }
    }

    #[test]
    fn the_confirmed_write_itself_keeps_its_base_and_ties_keep_the_record_held() {
        let settled = Settled {
            seq: 20.0,
            version: 7,
        };
        // Same seq: it is the confirmed write, neither superseded nor re-based.
        let itself = w(20.0, 3, Condition::Plain, true);
        assert_eq!(
            standing(&itself, settled),
            Standing::Queued { base_version: 3 }
        );
        // One newer: re-based on the confirmed version.
        let newer = w(20.5, 3, Condition::Plain, true);
        assert_eq!(
            standing(&newer, settled),
            Standing::Queued { base_version: 7 }
        );
        // Two records of the same write (same seq): the one already held stays.
        let other = Settled {
            seq: 20.0,
            version: 8,
        };
        assert_eq!(settled.newest(other), settled);
        assert_eq!(other.newest(settled), other);
    }

    #[test]
    fn a_write_older_than_a_confirmed_one_is_superseded() {
        let settled = Settled {
            seq: 20.0,
            version: 2,
        };
        let older = w(10.0, 1, Condition::Plain, true);
        assert_eq!(standing(&older, settled), Standing::Superseded);
        // Nothing confirmed yet: nothing is superseded.
        assert_eq!(
            standing(&older, Settled::default()),
            Standing::Queued { base_version: 1 }
        );
    }

    #[test]
    fn a_newer_write_is_rebased_on_the_confirmed_one_never_lowered() {
        let settled = Settled {
            seq: 20.0,
            version: 7,
        };
        assert_eq!(
            standing(&w(30.0, 5, Condition::Plain, true), settled),
            Standing::Queued { base_version: 7 }
        );
        assert_eq!(
            standing(&w(30.0, 9, Condition::IfVersion, false), settled),
            Standing::Queued { base_version: 9 }
        );
        // The confirmed write itself keeps its base.
        assert_eq!(
            standing(&w(20.0, 6, Condition::Plain, false), settled),
            Standing::Queued { base_version: 6 }
        );
    }

    #[test]
    fn settled_records_merge_to_the_newest() {
        let a = Settled {
            seq: 1.0,
            version: 4,
        };
        let b = Settled {
            seq: 2.0,
            version: 3,
        };
        assert_eq!(a.newest(b), b);
        assert_eq!(b.newest(a), b);
    }

    #[test]
    fn fresh_plain_sets_are_unconditional_replays_and_if_version_are_not() {
        let fresh = w(1.0, 3, Condition::Plain, false);
        let replay = w(2.0, 3, Condition::Plain, true);
        let cond = w(3.0, 3, Condition::IfVersion, false);
        assert_eq!(expected_version(&[fresh]), None);
        assert_eq!(expected_version(&[replay]), Some(3));
        assert_eq!(expected_version(&[cond]), Some(3));
        assert_eq!(expected_version(&[fresh, cond]), Some(3));
        assert_eq!(expected_version(&[]), None);
    }

    #[test]
    fn only_writes_on_the_same_base_coalesce() {
        let head = w(1.0, 3, Condition::Plain, false);
        assert!(coalesces(&head, &w(2.0, 3, Condition::IfVersion, false)));
        assert!(!coalesces(&head, &w(2.0, 4, Condition::Plain, false)));
    }

    #[test]
    fn an_if_version_older_than_the_known_version_is_stale_at_once() {
        assert!(stale_at_once(2, Some(3)));
        assert!(!stale_at_once(3, Some(3)));
        assert!(!stale_at_once(4, Some(3)), "the host may be behind");
        assert!(!stale_at_once(0, None));
    }

    #[test]
    fn failures_become_retries_splits_stale_writes_or_rollbacks() {
        use ErrorCode::*;
        assert_eq!(on_failure(Network, false, 0), Failure::Retry);
        assert_eq!(on_failure(Timeout, true, 0), Failure::Retry);
        assert_eq!(on_failure(RateLimited, false, 0), Failure::Retry);
        assert_eq!(on_failure(Conflict, false, 0), Failure::Stale);
        assert_eq!(on_failure(Conflict, true, 0), Failure::Stale);
        assert_eq!(on_failure(QuotaExceeded, true, 0), Failure::Split);
        assert_eq!(on_failure(QuotaExceeded, false, 0), Failure::RollBack);
        assert_eq!(on_failure(Internal, false, 1), Failure::Retry);
        assert_eq!(
            on_failure(Internal, false, MAX_SERVER_ERRORS),
            Failure::RollBack
        );
        assert_eq!(on_failure(Internal, true, 1), Failure::Retry);
    }
}
