//! One widget port's call slots, as the host counts them.
//!
//! A call the host is working on holds an *in-flight* slot until it is answered. A write
//! (`ctx.store.set` / `update`) gives its slot back as soon as the host reports it *queued*
//! (in the durable outbox, going to be sent however long the server takes): from then on it
//! costs the host no work, only memory, and counts against a larger cap of queued writes
//! instead. So a widget can make 1,000 quick `set()` calls without waiting for the server,
//! while one that never lets its calls finish is still bounded twice.
//!
//! Ids are the widget's request ids; the same id twice on one port at once is refused (a
//! port re-sends a call only on a new port, after a re-handshake), so duplicates cannot
//! buy a hostile widget extra concurrency.

use std::collections::HashSet;

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The in-flight cap is reached (RATE_LIMITED).
    InFlight,
    /// The queued-writes cap is reached (RATE_LIMITED).
    Queued,
    /// A call with this id is already running on this port (INVALID_ARGUMENT).
    Duplicate,
}

/// The slots of one port: the calls being worked on and the writes queued.
#[derive(Debug, Clone)]
pub struct CallSlots {
    max_in_flight: usize,
    max_queued: usize,
    working: HashSet<u64>,
    queued: HashSet<u64>,
}

impl CallSlots {
    /// Slots for at most `max_in_flight` calls worked on and `max_queued` queued writes.
    pub fn new(max_in_flight: usize, max_queued: usize) -> Self {
        CallSlots {
            max_in_flight,
            max_queued,
            working: HashSet::new(),
            queued: HashSet::new(),
        }
    }

    /// Admits call `id`, or says why not. Both caps apply to every call: a port whose
    /// queued writes are at the cap takes no more calls until some settle.
    pub fn admit(&mut self, id: f64) -> Result<(), Refusal> {
        let key = id.to_bits();
        if self.working.contains(&key) || self.queued.contains(&key) {
            return Err(Refusal::Duplicate);
        }
        if self.working.len() >= self.max_in_flight {
            return Err(Refusal::InFlight);
        }
        if self.queued.len() >= self.max_queued {
            return Err(Refusal::Queued);
        }
        self.working.insert(key);
        Ok(())
    }

    /// Call `id`'s write is queued: its in-flight slot is free again. False when `id` is not
    /// worked on by this port (already queued, finished, or running on another port).
    pub fn queued(&mut self, id: f64) -> bool {
        let key = id.to_bits();
        if !self.working.remove(&key) {
            return false;
        }
        self.queued.insert(key);
        true
    }

    /// Call `id` was answered: whatever slot it held is free.
    pub fn finish(&mut self, id: f64) {
        let key = id.to_bits();
        if !self.working.remove(&key) {
            self.queued.remove(&key);
        }
    }

    /// Calls being worked on (in-flight slots taken).
    pub fn in_flight(&self) -> usize {
        self.working.len()
    }

    /// Queued writes not answered yet.
    pub fn queued_count(&self) -> usize {
        self.queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_flight_cap_admits_exactly_max_calls() {
        let mut s = CallSlots::new(3, 10);
        for id in 1..=3 {
            assert_eq!(s.admit(f64::from(id)), Ok(()));
        }
        assert_eq!(s.in_flight(), 3);
        assert_eq!(s.admit(4.0), Err(Refusal::InFlight));
        s.finish(2.0);
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.admit(4.0), Ok(()));
        assert_eq!(s.admit(5.0), Err(Refusal::InFlight));
    }

    #[test]
    fn a_queued_write_gives_its_in_flight_slot_back_and_counts_as_queued() {
        let mut s = CallSlots::new(2, 2);
        s.admit(1.0).unwrap();
        s.admit(2.0).unwrap();
        assert_eq!(s.admit(3.0), Err(Refusal::InFlight));
        assert!(s.queued(1.0));
        assert!(!s.queued(1.0), "queued once");
        assert_eq!((s.in_flight(), s.queued_count()), (1, 1));
        s.admit(3.0).unwrap();
        assert!(s.queued(3.0));
        assert_eq!((s.in_flight(), s.queued_count()), (1, 2));
        // Both caps hold: two queued writes at the cap refuse any new call.
        assert_eq!(s.admit(4.0), Err(Refusal::Queued));
        s.finish(1.0);
        assert_eq!((s.in_flight(), s.queued_count()), (1, 1));
        assert_eq!(s.admit(4.0), Ok(()));
        assert_eq!((s.in_flight(), s.queued_count()), (2, 1));
    }

    #[test]
    fn finishing_frees_exactly_the_slot_the_call_held() {
        let mut s = CallSlots::new(4, 4);
        s.admit(1.0).unwrap();
        s.admit(2.0).unwrap();
        s.queued(2.0);
        s.finish(2.0);
        assert_eq!((s.in_flight(), s.queued_count()), (1, 0));
        s.finish(1.0);
        assert_eq!((s.in_flight(), s.queued_count()), (0, 0));
        // Unknown ids change nothing.
        s.finish(9.0);
        assert!(!s.queued(9.0));
        assert_eq!((s.in_flight(), s.queued_count()), (0, 0));
    }

    #[test]
    fn the_same_id_twice_on_one_port_is_refused_while_it_runs_or_is_queued() {
        let mut s = CallSlots::new(4, 4);
        s.admit(7.0).unwrap();
        assert_eq!(s.admit(7.0), Err(Refusal::Duplicate));
        s.queued(7.0);
        assert_eq!(s.admit(7.0), Err(Refusal::Duplicate));
        s.finish(7.0);
        assert_eq!(s.admit(7.0), Ok(()), "an answered id may come again");
        assert_eq!(s.in_flight(), 1);
    }
}
