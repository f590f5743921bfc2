//! The outbox rules composed the way the host's sync engine applies them, over thousands of
//! random interleavings: quick `update()`s from two widgets of one page, sends that fail,
//! conflicts, revalidations and another device writing meanwhile. Whatever the order, every
//! update's change lands exactly once and nothing another device wrote is lost.
//!
//! The model is deliberately small: a server (version + items), one browser's queue of
//! conditional writes and what it shows, and updates that read, compute (append their item)
//! and write, re-running on CONFLICT as `ctx.store.update` does.

use monodit_core::outbox::{
    admit, coalesces, expected_version, on_failure, standings, Admission, Condition, Failure,
    Settled, Standing, View, WriteFacts,
};
use monodit_core::ErrorCode;

/// xorshift64*: deterministic, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Write {
    facts: WriteFacts,
    items: Vec<u32>,
    update: usize,
}

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
    confirmed_version: u64,
    confirmed_items: Vec<u32>,
    settled: Settled,
    pending: Vec<Write>,
    next_seq: f64,
    updates: Vec<(u32, Phase)>,
    other_items: Vec<u32>,
}

impl Model {
    fn view(&self) -> View {
        View {
            confirmed_version: self.confirmed_version,
            known: true,
            settled: self.settled,
            newest: self.pending.last().map(|w| w.facts),
        }
    }

    fn visible(&self) -> Vec<u32> {
        self.pending
            .last()
            .map_or_else(|| self.confirmed_items.clone(), |w| w.items.clone())
    }

    fn snapshot(&self) -> Phase {
        Phase::Read(self.visible(), self.confirmed_version, self.view().head())
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
        match admit(version, Some(head), &self.view()) {
            Admission::Queue {
                base_version,
                after,
            } => {
                self.next_seq += 1.0;
                let mut items = items;
                items.push(self.updates[u].0);
                self.pending.push(Write {
                    facts: WriteFacts {
                        seq: self.next_seq,
                        base_version,
                        condition: Condition::IfVersion,
                        replay: false,
                        after,
                    },
                    items,
                    update: u,
                });
                self.updates[u].1 = Phase::Queued;
            }
            // CONFLICT at once: `fn` runs again on the data it carries.
            Admission::Stale => self.updates[u].1 = self.snapshot(),
        }
    }

    /// One PUT of the oldest writes that coalesce; `reachable` false is a network failure.
    fn flush(&mut self, reachable: bool) {
        if self.pending.is_empty() {
            return;
        }
        let n = 1 + self
            .pending
            .windows(2)
            .take_while(|w| coalesces(&w[0].facts, &w[1].facts))
            .count();
        let facts: Vec<WriteFacts> = self.pending[..n].iter().map(|w| w.facts).collect();
        if !reachable {
            for w in &mut self.pending[..n] {
                w.facts.replay = true;
            }
            assert_eq!(on_failure(ErrorCode::Network, n > 1, 0), Failure::Retry);
            return;
        }
        let expected = expected_version(&facts);
        assert!(expected.is_some(), "updates are always conditional");
        let last = self.pending[n - 1].clone();
        if expected.is_some_and(|e| e != self.server_version) {
            assert_eq!(on_failure(ErrorCode::Conflict, n > 1, 0), Failure::Stale);
            // Stale: fetch the server's document, roll the batch back, re-run each update
            // on what the browser now shows.
            self.confirmed_version = self.server_version;
            self.confirmed_items = self.server_items.clone();
            let batch: Vec<Write> = self.pending.drain(..n).collect();
            for w in batch {
                self.updates[w.update].1 = self.snapshot();
            }
            return;
        }
        self.server_version += 1;
        self.server_items = last.items.clone();
        let batch: Vec<Write> = self.pending.drain(..n).collect();
        for w in batch {
            self.updates[w.update].1 = Phase::Done;
        }
        self.confirmed_version = self.server_version;
        self.confirmed_items = last.items.clone();
        self.settled = self.settled.newest(Settled {
            seq: last.facts.seq,
            version: self.server_version,
        });
        let facts: Vec<WriteFacts> = self.pending.iter().map(|w| w.facts).collect();
        for (w, s) in self.pending.iter_mut().zip(standings(&facts, self.settled)) {
            match s {
                Standing::Queued { base_version } => w.facts.base_version = base_version,
                Standing::Superseded => panic!("a conditional write was superseded"),
            }
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
        if self.server_version > self.confirmed_version {
            self.confirmed_version = self.server_version;
            self.confirmed_items = self.server_items.clone();
        }
    }
}

fn run(seed: u64, updates: u32) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut m = Model {
        server_version: 1,
        server_items: vec![0],
        confirmed_version: 1,
        confirmed_items: vec![0],
        settled: Settled::default(),
        pending: Vec::new(),
        next_seq: 0.0,
        updates: (1..=updates).map(|i| (i, Phase::Idle)).collect(),
        other_items: Vec::new(),
    };
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "seed {seed}: does not settle");
        let all_done = m.updates.iter().all(|(_, p)| matches!(p, Phase::Done));
        if all_done && m.pending.is_empty() {
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
