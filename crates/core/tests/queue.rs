//! Every transition of core's `BucketQueue` (one bucket's document queue) and its boundaries,
//! natively; `outbox_model.rs` runs the same queue over random interleavings.

use monodit_core::api::Contract;
use monodit_core::buckets::Backend;
use monodit_core::outbox::{Condition, Settled, MAX_SERVER_ERRORS};
use monodit_core::queue::{AfterFailure, Batch, BucketQueue, QueuedWrite};
use monodit_core::ErrorCode;

fn contract() -> Contract {
    Contract {
        backend: Backend::D1Json,
        schema_id: "todo.list".into(),
        schema_version: 1,
    }
}

fn write(id: &str, seq: f64, base: u64) -> QueuedWrite<u32> {
    QueuedWrite {
        mutation_id: id.into(),
        value: seq as u32,
        contract: contract(),
        seq,
        durable: true,
        server_errors: 0,
        base_version: base,
        condition: Condition::Plain,
        replay: false,
        after: None,
        adopted: false,
        sent_as: None,
    }
}

fn update(id: &str, seq: f64, base: u64, after: Option<f64>) -> QueuedWrite<u32> {
    QueuedWrite {
        condition: Condition::IfVersion,
        after,
        ..write(id, seq, base)
    }
}

fn queue(writes: Vec<QueuedWrite<u32>>) -> BucketQueue<u32> {
    BucketQueue {
        confirmed_value: 100,
        confirmed_version: 3,
        known: true,
        pending: writes,
        ..BucketQueue::default()
    }
}

#[test]
fn quick_sets_go_out_as_one_put_of_the_newest_value() {
    let q = queue(vec![
        write("a", 1.0, 3),
        write("b", 2.0, 3),
        write("c", 3.0, 3),
    ]);
    let b = q.next_batch(64).unwrap();
    assert_eq!(b.ids, ["a", "b", "c"]);
    assert_eq!(
        (b.last, b.head_durable, b.expected_version),
        (2, true, None)
    );
    // At most `max` writes per PUT.
    assert_eq!(q.next_batch(2).unwrap().ids, ["a", "b"]);
    assert_eq!(q.next_batch(1).unwrap().ids, ["a"]);
    assert_eq!(q.next_batch(0).unwrap().ids, ["a"]);
    assert!(queue(vec![]).next_batch(64).is_none());
}

#[test]
fn a_write_not_yet_durable_or_with_another_contract_waits_for_the_next_put() {
    let mut fresh = write("b", 2.0, 3);
    fresh.durable = false;
    let q = queue(vec![write("a", 1.0, 3), fresh, write("c", 3.0, 3)]);
    assert_eq!(q.next_batch(64).unwrap().ids, ["a"]);
    let mut other = write("b", 2.0, 3);
    other.contract.schema_version = 2;
    let q = queue(vec![write("a", 1.0, 3), other]);
    assert_eq!(q.next_batch(64).unwrap().ids, ["a"]);
    // A head not yet durable is still sent, and says so.
    let mut head = write("a", 1.0, 3);
    head.durable = false;
    assert!(!queue(vec![head]).next_batch(64).unwrap().head_durable);
}

#[test]
fn an_update_joins_only_right_behind_the_write_it_was_computed_on() {
    let q = queue(vec![
        write("a", 1.0, 3),
        update("u", 2.0, 3, Some(1.0)),
        update("v", 3.0, 3, None),
    ]);
    let b = q.next_batch(64).unwrap();
    assert_eq!(b.ids, ["a", "u"]);
    assert_eq!(b.expected_version, Some(3));
}

#[test]
fn confirming_settles_the_batch_and_rebases_what_was_made_on_it() {
    let mut q = queue(vec![
        write("a", 1.0, 3),
        write("b", 2.0, 3),
        update("u", 3.0, 3, Some(2.0)),
        update("v", 4.0, 3, None),
    ]);
    let settled = q.confirm(&["a".into(), "b".into()], 2, contract(), 2.0, 4);
    assert_eq!(settled, ["a", "b"]);
    assert_eq!((q.confirmed_value, q.confirmed_version), (2, 4));
    assert_eq!(
        q.settled,
        Settled {
            seq: 2.0,
            version: 4
        }
    );
    let bases: Vec<u64> = q.pending.iter().map(|p| p.base_version).collect();
    assert_eq!(bases, [4, 3], "u was computed on b; v on the old document");
    // Settled already (another tab): nothing happens.
    assert!(q.confirm(&["a".into()], 9, contract(), 1.0, 9).is_empty());
    assert_eq!(q.confirmed_version, 4);
}

#[test]
fn an_older_confirmation_never_lowers_the_confirmed_document() {
    let mut q = queue(vec![write("a", 1.0, 3)]);
    q.confirmed_version = 7;
    q.confirm(&["a".into()], 1, contract(), 1.0, 5);
    assert_eq!((q.confirmed_value, q.confirmed_version), (100, 7));
    // Exactly the known version is taken (the same write reported again).
    let mut q = queue(vec![write("a", 1.0, 3)]);
    q.confirm(&["a".into()], 1, contract(), 1.0, 3);
    assert_eq!(q.confirmed_value, 1);
}

#[test]
fn a_confirmed_newer_write_supersedes_older_plain_ones_of_another_tab() {
    let mut q = queue(vec![write("old", 1.0, 3), write("new", 5.0, 3)]);
    let settled = q.confirm(&["new".into()], 5, contract(), 5.0, 4);
    assert_eq!(settled, ["new", "old"]);
    assert!(q.pending.is_empty());
    // Merging another tab's record does the same, once.
    let mut q = queue(vec![write("old", 1.0, 3), update("u", 2.0, 3, None)]);
    assert_eq!(
        q.merge_settled(Settled {
            seq: 5.0,
            version: 4
        }),
        ["old"]
    );
    assert!(q
        .merge_settled(Settled {
            seq: 5.0,
            version: 4
        })
        .is_empty());
    assert!(q
        .merge_settled(Settled {
            seq: 4.0,
            version: 9
        })
        .is_empty());
    assert_eq!(q.pending.len(), 1, "an update is never superseded");
    // Another record of the same write (same seq): the one held stays.
    q.merge_settled(Settled {
        seq: 5.0,
        version: 8,
    });
    assert_eq!(
        q.settled,
        Settled {
            seq: 5.0,
            version: 4
        }
    );
}

#[test]
fn failures_retry_as_replays_split_go_stale_or_roll_back() {
    let mut q = queue(vec![write("a", 1.0, 3), write("b", 2.0, 3)]);
    let both = q.next_batch(64).unwrap();
    assert_eq!(q.on_failure(&both, ErrorCode::Network), AfterFailure::Retry);
    assert!(q.pending.iter().all(|p| p.replay));
    let retry = q.next_batch(64).unwrap();
    assert_eq!(
        retry.ids,
        ["a", "b"],
        "the same PUT again, under b's id: it may be stored already"
    );
    assert_eq!(retry.last, 1);
    assert_eq!(retry.expected_version, Some(3));
    assert_eq!(
        q.on_failure(&both, ErrorCode::QuotaExceeded),
        AfterFailure::Split
    );
    assert!(q.solo);
    let one = q.next_batch(64).unwrap();
    assert_eq!(one.ids, ["a"]);
    assert_eq!(
        q.on_failure(&one, ErrorCode::QuotaExceeded),
        AfterFailure::RollBack
    );
    assert!(q.roll_back("a"));
    assert!(!q.solo, "the next write goes out coalesced again");
    assert!(!q.roll_back("a"));
    assert_eq!(q.on_failure(&one, ErrorCode::Conflict), AfterFailure::Stale);
    assert_eq!(q.settle_stale(&["b".into(), "x".into()]), ["b"]);
    assert!(q.pending.is_empty());
}

#[test]
fn a_write_whose_answer_was_lost_is_resent_alone_then_the_rest_follow_on_its_version() {
    // The server stored `a` as version 4 but the answer was lost; `b` was queued meanwhile.
    let mut q = queue(vec![write("a", 1.0, 3)]);
    let first = q.next_batch(64).unwrap();
    q.push(write("b", 2.0, 3));
    assert_eq!(
        q.on_failure(&first, ErrorCode::Network),
        AfterFailure::Retry
    );
    // Re-sent alone under its own mutation id (the server answers it from its record).
    let again = q.next_batch(64).unwrap();
    assert_eq!(again.ids, ["a"]);
    assert_eq!(again.expected_version, Some(3));
    assert_eq!(q.confirm(&again.ids, 1, contract(), 1.0, 4), ["a"]);
    // Then `b`, made on top of it, goes out on the version `a` got, coalesced again.
    q.push(write("c", 3.0, q.confirmed_version));
    let next = q.next_batch(64).unwrap();
    assert_eq!(next.ids, ["b", "c"]);
    assert_eq!(q.pending[0].base_version, 4);
}

#[test]
fn a_coalesced_put_whose_answer_was_lost_goes_out_again_as_the_same_put_first() {
    // [a, b] went out as b; the connection failed (b may be stored as version 4).
    let mut q = queue(vec![write("a", 1.0, 3), write("b", 2.0, 3)]);
    let both = q.next_batch(64).unwrap();
    assert_eq!(both.ids, ["a", "b"]);
    assert_eq!(q.on_failure(&both, ErrorCode::Timeout), AfterFailure::Retry);
    let marks: Vec<Option<&str>> = q.pending.iter().map(|p| p.sent_as.as_deref()).collect();
    assert_eq!(marks, [Some("b"), Some("b")]);
    // A newer write waits behind it, and so does an older one another tab made, adopted now.
    q.push(write("c", 3.0, 3));
    assert!(q.adopt(QueuedWrite {
        adopted: true,
        replay: true,
        ..write("x", 0.5, 3)
    }));
    for _ in 0..2 {
        let again = q.next_batch(64).unwrap();
        assert_eq!(again.ids, ["a", "b"]);
        assert_eq!(q.pending[again.last].mutation_id, "b", "sent under b's id");
        assert_eq!(again.expected_version, Some(3));
        // Failing again keeps the mark on the PUT it was first.
        assert_eq!(
            q.on_failure(&again, ErrorCode::Network),
            AfterFailure::Retry
        );
    }
    // The server answers it from its record: a and b confirmed as version 4; the older x is
    // superseded, c goes out next on version 4.
    let again = q.next_batch(64).unwrap();
    let mut settled = q.confirm(&again.ids, 2, contract(), 2.0, 4);
    settled.sort();
    assert_eq!(settled, ["a", "b", "x"]);
    let next = q.next_batch(64).unwrap();
    assert_eq!(next.ids, ["c"]);
    assert_eq!(q.pending[0].base_version, 4);
    // Reading the outbox again never clears a mark this tab holds, and adopting a held
    // write takes the outbox's mark.
    let mut q = queue(vec![write("a", 1.0, 3), write("b", 2.0, 3)]);
    let both = q.next_batch(64).unwrap();
    q.on_failure(&both, ErrorCode::Network);
    assert!(!q.adopt(write("a", 1.0, 3)));
    assert_eq!(q.pending[0].sent_as.as_deref(), Some("b"));
    let mut q = queue(vec![write("a", 1.0, 3)]);
    assert!(!q.adopt(QueuedWrite {
        sent_as: Some("a".into()),
        ..write("a", 1.0, 3)
    }));
    assert_eq!(q.pending[0].sent_as.as_deref(), Some("a"));
    assert!(q.pending[0].replay);
    // The first mark stays; an unmarked copy changes nothing.
    assert!(!q.adopt(QueuedWrite {
        sent_as: Some("z".into()),
        ..write("a", 1.0, 3)
    }));
    assert_eq!(q.pending[0].sent_as.as_deref(), Some("a"));
    let mut q = queue(vec![write("a", 1.0, 3)]);
    assert!(!q.adopt(write("a", 1.0, 3)));
    assert_eq!(q.pending[0], write("a", 1.0, 3));
    // A server answer (here: refused for good) clears the mark: nothing was stored.
    let mut q = queue(vec![write("a", 1.0, 3), write("b", 2.0, 3)]);
    let both = q.next_batch(64).unwrap();
    q.on_failure(&both, ErrorCode::Network);
    assert_eq!(
        q.on_failure(&both, ErrorCode::QuotaExceeded),
        AfterFailure::Split
    );
    assert!(q.pending.iter().all(|p| p.sent_as.is_none()));
    assert_eq!(q.next_batch(64).unwrap().ids, ["a"], "one by one");
}

#[test]
fn updates_computed_on_a_stale_write_go_stale_with_it() {
    // Another tab's chain (x) interleaves with this one (a → u → v); `a` lost a race.
    let mut q = queue(vec![
        update("a", 1.0, 3, None),
        update("x", 2.0, 3, None),
        update("u", 3.0, 3, Some(1.0)),
        write("p", 4.0, 3),
        update("v", 5.0, 3, Some(3.0)),
        update("w", 6.0, 3, Some(2.0)),
    ]);
    assert_eq!(q.settle_stale(&["a".into()]), ["a", "u", "v"]);
    let left: Vec<&str> = q.pending.iter().map(|p| p.mutation_id.as_str()).collect();
    assert_eq!(left, ["x", "p", "w"], "other chains and plain writes stay");
}

#[test]
fn a_write_the_server_keeps_failing_rolls_back_after_the_fifth_answer() {
    let mut q = queue(vec![write("a", 1.0, 3)]);
    let b = q.next_batch(64).unwrap();
    for _ in 1..MAX_SERVER_ERRORS {
        assert_eq!(q.on_failure(&b, ErrorCode::Internal), AfterFailure::Retry);
    }
    assert_eq!(q.pending[0].server_errors, MAX_SERVER_ERRORS - 1);
    assert_eq!(
        q.on_failure(&b, ErrorCode::Internal),
        AfterFailure::RollBack
    );
    // A write no longer queued is not retried.
    let gone = Batch {
        ids: vec!["zz".into()],
        ..b
    };
    assert_eq!(
        q.on_failure(&gone, ErrorCode::Internal),
        AfterFailure::RollBack
    );
}

#[test]
fn adopted_writes_are_ordered_by_seq_and_never_twice() {
    let mut q = queue(vec![write("a", 1.0, 3), write("c", 3.0, 3)]);
    assert!(q.adopt(write("b", 2.0, 3)));
    assert!(!q.adopt(write("b", 2.0, 3)));
    assert!(q.adopt(write("d", 4.0, 3)));
    assert!(q.adopt(write("z", 0.5, 3)));
    let ids: Vec<&str> = q.pending.iter().map(|p| p.mutation_id.as_str()).collect();
    assert_eq!(ids, ["z", "a", "b", "c", "d"]);
}

/// Another tab's write, read back from the shared outbox.
fn adopted(id: &str, seq: f64, base: u64, after: Option<f64>) -> QueuedWrite<u32> {
    QueuedWrite {
        adopted: true,
        replay: true,
        ..update(id, seq, base, after)
    }
}

#[test]
fn a_tab_shows_and_updates_on_its_own_newest_write_while_another_tabs_newer_ones_queue() {
    // This tab's update "a" is queued; another tab's chain (made later, on its own view,
    // which lacks "a") is adopted behind it.
    let mut q = queue(vec![update("a", 1.0, 3, None)]);
    assert!(q.adopt(adopted("x", 2.0, 3, None)));
    assert!(q.adopt(adopted("y", 4.0, 3, Some(2.0))));
    assert!(q.has_own());
    assert_eq!(q.shown().map(|w| w.mutation_id.as_str()), Some("a"));
    assert_eq!(q.visible(), &1);
    // An update that read what this tab shows is admitted on top of "a", not of "y".
    assert_eq!(q.view().head(), Some(1.0));
    assert_eq!(
        q.place(Some(3), Some(Some(1.0))),
        Ok((3, Condition::IfVersion, Some(1.0)))
    );
    assert_eq!(q.place(Some(3), Some(Some(4.0))), Err(()));
    let seq = q.next_seq(3.0);
    assert_eq!(seq, 5.0, "still newer than every write known");
    q.push(update("b", seq, 3, Some(1.0)));
    assert_eq!(q.visible(), &5);
    // Sent in seq order; "b" does not coalesce behind "y" (not computed on it).
    assert_eq!(q.next_batch(64).map(|b| b.ids), Some(vec!["a".to_string()]));
    // With none of its own left, the tab shows the newest adopted write.
    q.remove(&["a".to_string(), "b".to_string()]);
    assert!(!q.has_own());
    assert_eq!(q.shown().map(|w| w.mutation_id.as_str()), Some("y"));
    assert_eq!(q.visible(), &4);
    q.remove(&["x".to_string(), "y".to_string()]);
    assert_eq!(q.shown(), None);
    assert_eq!(q.visible(), &100);
}

#[test]
fn a_new_write_is_newer_than_every_write_known_even_if_the_clock_went_back() {
    let q = queue(vec![write("a", 50.0, 3)]);
    assert_eq!(q.next_seq(10.0), 51.0);
    assert_eq!(q.next_seq(60.0), 60.0);
    let mut q = queue(vec![]);
    q.settled = Settled {
        seq: 70.0,
        version: 3,
    };
    assert_eq!(q.next_seq(10.0), 71.0);
    assert_eq!(queue(vec![]).next_seq(5.0), 5.0);
}

#[test]
fn placing_a_write_plain_or_conditional() {
    let q = queue(vec![write("a", 1.0, 3)]);
    assert_eq!(q.place(None, None), Ok((3, Condition::Plain, None)));
    assert_eq!(
        q.place(Some(3), Some(Some(1.0))),
        Ok((3, Condition::IfVersion, Some(1.0)))
    );
    assert_eq!(q.place(Some(3), Some(None)), Err(()));
    assert_eq!(q.place(Some(2), None), Err(()));
    assert_eq!(q.visible(), &1);
    assert_eq!(queue(vec![]).visible(), &100);
}

#[test]
fn marking_durable_and_deleting_the_bucket() {
    let mut fresh = write("a", 1.0, 3);
    fresh.durable = false;
    let mut q = queue(vec![fresh]);
    assert!(q.mark_durable("a"));
    assert!(q.pending[0].durable);
    assert!(!q.mark_durable("zz"));
    q.solo = true;
    let gone = q.delete();
    assert_eq!(gone.len(), 1);
    assert!(q.pending.is_empty() && !q.solo);
    assert_eq!(
        (
            q.confirmed_value,
            q.confirmed_version,
            q.contract.clone(),
            q.known
        ),
        (0, 0, None, true)
    );
    assert_eq!(q.remove(&["a".into()]), Vec::<String>::new());
}
