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
//! - **Computed on** (`after`): a conditional write (`update()`) records which write its value
//!   was computed from: the newest queued write the caller saw (its *head*, see [`admit`]), or
//!   none (the confirmed document at its base). It joins a coalesced PUT only right behind
//!   that write ([`coalesces`]), moves onto a newer confirmed version only if that version is
//!   the write it was computed on, directly or through a chain ([`standings`]), and is never
//!   superseded: a conditional write that did not see a newer write goes out on its own base,
//!   the server answers CONFLICT, and `update()` runs again on the current value.

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
    /// For a conditional write: the `seq` of the write its value was computed on (a queued
    /// write, or this browser's confirmed write), or `None` when it was computed on the
    /// confirmed document at `base_version`. Plain writes ignore it.
    pub after: Option<f64>,
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
    // Seqs are positive, so nothing confirmed yet (seq 0) supersedes nothing.
    if w.seq < settled.seq {
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

/// The standing of every queued write of a bucket (oldest first) once `settled` is the newest
/// confirmed write: plain writes as [`standing`]; a conditional write is never superseded and
/// moves onto the confirmed version only when it was computed on that write, or on a queued
/// write that moved (a chain of `after` links); otherwise it keeps its base, so the server
/// refuses it (CONFLICT) if anything it did not see landed first.
pub fn standings(writes: &[WriteFacts], settled: Settled) -> Vec<Standing> {
    let mut out: Vec<Standing> = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        let s = match (w.condition, w.after) {
            (Condition::Plain, _) => standing(w, settled),
            (Condition::IfVersion, None) => Standing::Queued {
                base_version: w.base_version,
            },
            (Condition::IfVersion, Some(a)) if a == settled.seq => Standing::Queued {
                base_version: w.base_version.max(settled.version),
            },
            (Condition::IfVersion, Some(a)) => {
                // Computed on a queued write: it follows that write's base.
                let on = writes[..i]
                    .iter()
                    .zip(&out)
                    .rev()
                    .find(|(p, _)| p.seq == a)
                    .and_then(|(_, s)| match s {
                        Standing::Queued { base_version } => Some(*base_version),
                        Standing::Superseded => None,
                    });
                Standing::Queued {
                    base_version: on.map_or(w.base_version, |b| w.base_version.max(b)),
                }
            }
        };
        out.push(s);
    }
    out
}

/// Whether `next` may be confirmed by the same PUT as `prev`, the write right before it in the
/// queue (the newest value of a batch goes out; the caller also requires the same contract):
/// only writes made on the same version, so one condition fits them all, and a conditional
/// write only right behind the write it was computed on (its value then includes that one;
/// any other write it did not see would be lost by sending its value alone).
pub fn coalesces(prev: &WriteFacts, next: &WriteFacts) -> bool {
    prev.base_version == next.base_version
        && (next.condition == Condition::Plain || next.after == Some(prev.seq))
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

/// What the host knows of a bucket when a conditional write arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// The confirmed version (what `get` answers as `version`).
    pub confirmed_version: u64,
    /// Whether that version came from the mirror or the server (else it is a guess).
    pub known: bool,
    /// The newest write of this browser the server confirmed.
    pub settled: Settled,
    /// The newest queued write, whose value is the one shown.
    pub newest: Option<WriteFacts>,
}

impl View {
    /// The read token `get` answers with (`head`): which write the value shown is, the newest
    /// queued one, or this browser's confirmed write while it is the confirmed version; `None`
    /// when the value shown is a confirmed document no queued write of this browser made.
    pub fn head(&self) -> Option<f64> {
        self.newest.map(|w| w.seq).or_else(|| {
            (self.settled.seq > 0.0 && self.settled.version == self.confirmed_version)
                .then_some(self.settled.seq)
        })
    }
}

/// What becomes of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Queue it on this base, computed on `after` (see [`WriteFacts::after`]).
    Queue {
        /// The version it is conditioned on.
        base_version: u64,
        /// The write its value was computed on.
        after: Option<f64>,
    },
    /// The value it was computed on is no longer the one shown: CONFLICT at once, with the
    /// current value and head, so `update()` runs again on it.
    Stale,
}

/// Admits a conditional write made on `if_version`. With a read token (`if_head`: `Some`,
/// from `update()`, which read `{version, head}`), it is admitted only while the value shown
/// is still the one it was computed on, whatever was confirmed meanwhile: on top of the
/// newest queued write, or on the confirmed document. Without one (`set(v, {ifVersion})`), an
/// `ifVersion` older than the known version is stale; otherwise it goes on top of the queued
/// writes, as the caller saw them.
pub fn admit(if_version: u64, if_head: Option<Option<f64>>, view: &View) -> Admission {
    let stale_version = view.known && if_version < view.confirmed_version;
    match if_head {
        Some(head) if head != view.head() => Admission::Stale,
        Some(_) => match (view.newest, view.head()) {
            (Some(w), _) => Admission::Queue {
                base_version: w.base_version,
                after: Some(w.seq),
            },
            (None, Some(settled)) => Admission::Queue {
                base_version: view.confirmed_version,
                after: Some(settled),
            },
            (None, None) if stale_version => Admission::Stale,
            (None, None) => Admission::Queue {
                base_version: if_version,
                after: None,
            },
        },
        None if stale_version => Admission::Stale,
        None => Admission::Queue {
            base_version: if_version,
            after: view.head(),
        },
    }
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
            after: None,
        }
    }

    /// A conditional write computed on the write `after` (or on the confirmed document).
    fn upd(seq: f64, base: u64, after: Option<f64>) -> WriteFacts {
        WriteFacts {
            after,
            ..w(seq, base, Condition::IfVersion, false)
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
        assert!(coalesces(&head, &w(2.0, 3, Condition::Plain, true)));
        assert!(coalesces(&head, &upd(2.0, 3, Some(1.0))));
        assert!(!coalesces(&head, &w(2.0, 4, Condition::Plain, false)));
        assert!(!coalesces(&head, &upd(2.0, 4, Some(1.0))));
    }

    #[test]
    fn conditional_writes_that_did_not_see_each_other_never_share_a_put() {
        // Two updates computed on the same confirmed document (two tabs, or a read before
        // the other was queued): sending only the newer value would drop the older one.
        let a = upd(1.0, 3, None);
        let b = upd(2.0, 3, None);
        assert!(!coalesces(&a, &b));
        // Computed on another queued write than the one right before it: not either.
        let c = upd(3.0, 3, Some(1.0));
        assert!(!coalesces(&b, &c));
        // Right behind the write it was computed on: its value includes that one.
        assert!(coalesces(&a, &upd(2.0, 3, Some(1.0))));
        // A plain write replaces the document whole, whatever came before it.
        assert!(coalesces(&b, &w(4.0, 3, Condition::Plain, false)));
    }

    #[test]
    fn a_conditional_write_moves_onto_a_confirmed_write_only_if_computed_on_it() {
        let settled = Settled {
            seq: 1.0,
            version: 4,
        };
        let on_it = upd(2.0, 3, Some(1.0));
        let on_doc = upd(3.0, 3, None);
        let on_other = upd(4.0, 3, Some(0.5));
        let chained = upd(5.0, 3, Some(2.0));
        let plain = w(6.0, 3, Condition::Plain, false);
        let got = standings(&[on_it, on_doc, on_other, chained, plain], settled);
        assert_eq!(
            got,
            vec![
                Standing::Queued { base_version: 4 },
                Standing::Queued { base_version: 3 },
                Standing::Queued { base_version: 3 },
                Standing::Queued { base_version: 4 },
                Standing::Queued { base_version: 4 },
            ]
        );
        // Versions never go down: a base already past the confirmed version stays.
        assert_eq!(
            standings(&[upd(2.0, 9, Some(1.0))], settled),
            vec![Standing::Queued { base_version: 9 }]
        );
        // Nothing confirmed yet: an `after` of 0 is not "the confirmed write".
        assert_eq!(
            standings(&[upd(2.0, 3, Some(0.0))], Settled::default()),
            vec![Standing::Queued { base_version: 3 }]
        );
    }

    #[test]
    fn a_conditional_write_is_never_superseded_by_a_newer_confirmed_one() {
        // Another tab's newer write was confirmed; this older update never saw it. Settling
        // it as superseded would resolve it OK while its change is gone: it must go out on
        // its own base and come back CONFLICT instead.
        let settled = Settled {
            seq: 10.0,
            version: 6,
        };
        let older_update = upd(5.0, 5, None);
        let older_plain = w(4.0, 5, Condition::Plain, false);
        let chained_on_superseded = upd(7.0, 5, Some(4.0));
        assert_eq!(
            standings(&[older_plain, older_update, chained_on_superseded], settled),
            vec![
                Standing::Superseded,
                Standing::Queued { base_version: 5 },
                Standing::Queued { base_version: 5 },
            ]
        );
    }

    fn view(confirmed: u64, settled: (f64, u64), newest: Option<WriteFacts>) -> View {
        View {
            confirmed_version: confirmed,
            known: true,
            settled: Settled {
                seq: settled.0,
                version: settled.1,
            },
            newest,
        }
    }

    #[test]
    fn the_head_is_the_newest_queued_write_or_our_confirmed_write_while_current() {
        let queued = w(9.0, 4, Condition::Plain, false);
        assert_eq!(view(4, (3.0, 4), Some(queued)).head(), Some(9.0));
        assert_eq!(view(4, (3.0, 4), None).head(), Some(3.0));
        // Another device wrote since: the value shown is not ours.
        assert_eq!(view(5, (3.0, 4), None).head(), None);
        assert_eq!(view(0, (0.0, 0), None).head(), None);
    }

    #[test]
    fn an_update_is_admitted_only_on_the_value_it_was_computed_on() {
        let queued = w(9.0, 4, Condition::Plain, false);
        // On top of the newest queued write: its base, computed on it.
        assert_eq!(
            admit(4, Some(Some(9.0)), &view(4, (0.0, 0), Some(queued))),
            Admission::Queue {
                base_version: 4,
                after: Some(9.0)
            }
        );
        // The queued write was confirmed meanwhile: still the value it was computed on.
        assert_eq!(
            admit(4, Some(Some(9.0)), &view(5, (9.0, 5), None)),
            Admission::Queue {
                base_version: 5,
                after: Some(9.0)
            }
        );
        // Another write was queued after the read: stale, whatever the versions say.
        assert_eq!(
            admit(4, Some(None), &view(4, (0.0, 0), Some(queued))),
            Admission::Stale
        );
        assert_eq!(
            admit(4, Some(Some(8.0)), &view(4, (0.0, 0), Some(queued))),
            Admission::Stale
        );
        // Computed on the confirmed document: admitted while it is still the one shown.
        assert_eq!(
            admit(4, Some(None), &view(4, (0.0, 0), None)),
            Admission::Queue {
                base_version: 4,
                after: None
            }
        );
        assert_eq!(
            admit(4, Some(None), &view(5, (0.0, 0), None)),
            Admission::Stale
        );
        // A host that does not know the bucket yet leaves it to the server.
        let unknown = View {
            known: false,
            ..view(0, (0.0, 0), None)
        };
        assert_eq!(
            admit(7, Some(None), &unknown),
            Admission::Queue {
                base_version: 7,
                after: None
            }
        );
    }

    #[test]
    fn a_set_with_if_version_and_no_token_goes_on_top_of_the_queued_writes() {
        let queued = w(9.0, 4, Condition::Plain, false);
        assert_eq!(
            admit(4, None, &view(4, (0.0, 0), Some(queued))),
            Admission::Queue {
                base_version: 4,
                after: Some(9.0)
            }
        );
        assert_eq!(admit(3, None, &view(4, (0.0, 0), None)), Admission::Stale);
        assert_eq!(
            admit(5, None, &view(4, (0.0, 0), None)),
            Admission::Queue {
                base_version: 5,
                after: None
            }
        );
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
