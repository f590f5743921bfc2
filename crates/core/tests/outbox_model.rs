//! The outbox rules composed the way the host's sync engine applies them, over thousands of
//! random interleavings: quick `update()`s from two widgets of one page, sends that fail,
//! conflicts, revalidations and another device writing meanwhile. Whatever the order, every
//! update's change lands exactly once and nothing another device wrote is lost.
//!
//! The model is deliberately small: a server (version + items), the host's queue for the
//! bucket (core's `BucketQueue`, the state machine the sync engine runs), and updates that
//! read, compute (append their item) and write, re-running on CONFLICT as
//! `ctx.store.update` does.

use monodit_core::api::Contract;
use monodit_core::buckets::Backend;
use monodit_core::outbox::Condition;
use monodit_core::queue::{AfterFailure, BucketQueue, QueuedWrite};
use monodit_core::ErrorCode;

use crate::rng::Rng;

/// What an update is doing.
#[derive(Clone)]
enum Phase {
    /// Waiting for its turn (the page runs its updates one at a time).
    Idle,
    /// Read `{value, version, head}`; its write is next.
    Read(Vec<u32>, u64, Option<f64>),
    /// Its write is queued.
    Queued,
    Done,
}

struct Model {
    server_version: u64,
    server_items: Vec<u32>,
    /// The host's queue for the bucket: the engine's own state machine.
    q: BucketQueue<Vec<u32>>,
    next_seq: f64,
    updates: Vec<(u32, Phase)>,
    other_items: Vec<u32>,
}

fn contract() -> Contract {
    Contract {
        backend: Backend::D1Json,
        schema_id: "todo.list".into(),
        schema_version: 1,
    }
}

impl Model {
    fn snapshot(&self) -> Phase {
        Phase::Read(
            self.q.visible().clone(),
            self.q.confirmed_version,
            self.q.view().head(),
        )
    }

    /// The update a queued write belongs to (its mutation id is `u<index>-<seq>`).
    fn owner(id: &str) -> usize {
        id[1..id.find('-').unwrap()].parse().unwrap()
    }

    /// Whether update `u` may start: the widget (updates alternate between two widgets)
    /// runs its own one at a time, each once the one before is queued or done.
    fn may_start(&self, u: usize) -> bool {
        self.updates[..u]
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == u % 2)
            .all(|(_, (_, p))| matches!(p, Phase::Queued | Phase::Done))
    }

    fn read(&mut self, u: usize) {
        self.updates[u].1 = self.snapshot();
    }

    fn write(&mut self, u: usize) {
        let Phase::Read(items, version, head) = self.updates[u].1.clone() else {
            return;
        };
        match self.q.place(Some(version), Some(head)) {
            Ok((base_version, condition, after)) => {
                assert_eq!(condition, Condition::IfVersion);
                self.next_seq += 1.0;
                let seq = self.q.next_seq(self.next_seq);
                let mut items = items;
                items.push(self.updates[u].0);
                self.q.push(QueuedWrite {
                    mutation_id: format!("u{u}-{seq}"),
                    value: items,
                    contract: contract(),
                    seq,
                    durable: true,
                    server_errors: 0,
                    base_version,
                    condition,
                    replay: false,
                    after,
                    adopted: false,
                    sent_as: None,
                });
                self.updates[u].1 = Phase::Queued;
            }
            // CONFLICT at once: `fn` runs again on the data it carries.
            Err(()) => self.updates[u].1 = self.snapshot(),
        }
    }

    /// One PUT of the next batch; `reachable` false is a network failure.
    fn flush(&mut self, reachable: bool) {
        let Some(batch) = self.q.next_batch(64) else {
            return;
        };
        if !reachable {
            assert_eq!(
                self.q.on_failure(&batch, ErrorCode::Network),
                AfterFailure::Retry
            );
            return;
        }
        assert!(batch.expected_version.is_some(), "updates are conditional");
        let last = self.q.pending[batch.last].clone();
        if batch.expected_version != Some(self.server_version) {
            assert_eq!(
                self.q.on_failure(&batch, ErrorCode::Conflict),
                AfterFailure::Stale
            );
            // Stale: the server's document is fetched, the batch rolls back, each update
            // re-runs on what the browser now shows.
            self.q.confirmed_version = self.server_version;
            self.q.confirmed_value = self.server_items.clone();
            for id in self.q.settle_stale(&batch.ids) {
                let u = Self::owner(&id);
                self.updates[u].1 = self.snapshot();
            }
            return;
        }
        self.server_version += 1;
        self.server_items = last.value.clone();
        let settled = self.q.confirm(
            &batch.ids,
            last.value,
            last.contract,
            last.seq,
            self.server_version,
        );
        for id in settled {
            let u = Self::owner(&id);
            assert!(
                batch.ids.contains(&id),
                "an update was settled without being sent"
            );
            self.updates[u].1 = Phase::Done;
        }
    }

    /// Another device appends its item on the server (an update of its own that won).
    fn other_device(&mut self, item: u32) {
        self.server_version += 1;
        self.server_items.push(item);
        self.other_items.push(item);
    }

    /// A metadata check saw the server's newer version.
    fn revalidate(&mut self) {
        if self.server_version > self.q.confirmed_version {
            self.q.confirmed_version = self.server_version;
            self.q.confirmed_value = self.server_items.clone();
        }
    }
}

fn run(seed: u64, updates: u32) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut m = Model {
        server_version: 1,
        server_items: vec![0],
        q: BucketQueue {
            confirmed_value: vec![0],
            confirmed_version: 1,
            known: true,
            ..BucketQueue::default()
        },
        next_seq: 0.0,
        updates: (1..=updates).map(|i| (i, Phase::Idle)).collect(),
        other_items: Vec::new(),
    };
    let mut steps = 0;
    loop {
        steps += 1;
        // Every seed settles within about 540 steps; a broken queue that never settles must
        // fail here quickly rather than run on (its queue and values growing each step).
        assert!(steps < 10_000, "seed {seed}: does not settle");
        // Each update has at most one write queued at a time.
        assert!(
            m.q.pending.len() <= updates as usize,
            "seed {seed}: more writes queued than updates"
        );
        let all_done = m.updates.iter().all(|(_, p)| matches!(p, Phase::Done));
        if all_done && m.q.pending.is_empty() {
            break;
        }
        match rng.below(10) {
            0..=3 => {
                let u = rng.below(u64::from(updates)) as usize;
                match m.updates[u].1 {
                    Phase::Idle if m.may_start(u) => m.read(u),
                    Phase::Read(..) => m.write(u),
                    _ => {}
                }
            }
            4..=6 => m.flush(true),
            7 => m.flush(false),
            8 if m.other_items.len() < 3 => m.other_device(1000 + m.other_items.len() as u32),
            _ => m.revalidate(),
        }
    }
    let mut got = m.server_items.clone();
    got.sort_unstable();
    let mut want: Vec<u32> = (0..=updates).chain(m.other_items.iter().copied()).collect();
    want.sort_unstable();
    assert_eq!(got, want, "seed {seed}: every change exactly once");
}

#[test]
fn quick_updates_with_failures_conflicts_and_another_device_never_lose_a_change() {
    for seed in 0..3000 {
        run(seed, 1 + (seed % 8) as u32);
    }
}
