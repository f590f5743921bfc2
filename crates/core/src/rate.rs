//! A fixed rate window: at most `limit` events per `window_ms`, the rest counted as dropped.
//!
//! The host uses one per mount for `monodit:hello` messages (a hello storm must not make it
//! churn ports) and one for `ctx.log` lines (README "Limits": 100 lines/s per widget). The
//! clock is passed in (milliseconds, e.g. `Date.now()`), so the rule runs natively in tests.

/// At most `limit` admitted events per window of `window_ms`, counted from the first event of
/// the window; events past the limit are refused and counted until the window ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RateWindow {
    limit: u32,
    window_ms: f64,
    /// Start of the current window; `None` before the first event.
    start: Option<f64>,
    admitted: u32,
    dropped: u32,
}

impl RateWindow {
    /// A window admitting `limit` events per `window_ms` milliseconds.
    pub const fn new(limit: u32, window_ms: f64) -> Self {
        RateWindow {
            limit,
            window_ms,
            start: None,
            admitted: 0,
            dropped: 0,
        }
    }

    /// Starts a new window when `now_ms` is at or past the end of the current one, or before
    /// its start (the clock went back: waiting for it to catch up would keep the limit closed
    /// for the whole jump). Returns how many events the window that closed dropped (0 when
    /// the window stays open).
    pub fn roll(&mut self, now_ms: f64) -> u32 {
        let expired = match self.start {
            None => true,
            Some(start) => now_ms < start || now_ms - start >= self.window_ms,
        };
        if !expired {
            return 0;
        }
        let dropped = self.dropped;
        self.start = Some(now_ms);
        self.admitted = 0;
        self.dropped = 0;
        dropped
    }

    /// Whether one more event at `now_ms` is within the limit; a refused one is counted in
    /// [`RateWindow::dropped`]. Rolls the window first (see [`RateWindow::roll`]).
    pub fn admit(&mut self, now_ms: f64) -> bool {
        self.roll(now_ms);
        if self.admitted >= self.limit {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.admitted += 1;
        true
    }

    /// Events refused in the current window.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The most events admitted per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length in milliseconds.
    pub fn window_ms(&self) -> f64 {
        self.window_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_700_000_000_000.0;

    fn admitted(w: &mut RateWindow, now: f64, n: u32) -> u32 {
        (0..n).filter(|_| w.admit(now)).count() as u32
    }

    #[test]
    fn exactly_the_limit_is_admitted() {
        let mut w = RateWindow::new(100, 1_000.0);
        assert_eq!(admitted(&mut w, T0, 100), 100);
        assert_eq!(w.dropped(), 0);
    }

    #[test]
    fn one_past_the_limit_is_dropped_and_counted() {
        let mut w = RateWindow::new(100, 1_000.0);
        assert_eq!(admitted(&mut w, T0, 100), 100);
        assert!(!w.admit(T0 + 1.0));
        assert_eq!(w.dropped(), 1);
        assert!(!w.admit(T0 + 999.0));
        assert_eq!(w.dropped(), 2);
    }

    #[test]
    fn the_window_ends_exactly_window_ms_after_its_first_event() {
        let mut w = RateWindow::new(2, 1_000.0);
        assert!(w.admit(T0));
        assert!(w.admit(T0 + 500.0));
        assert!(!w.admit(T0 + 999.9));
        // At start + window_ms a new window opens, and it reports what the old one dropped.
        assert_eq!(w.roll(T0 + 1_000.0), 1);
        assert_eq!(w.dropped(), 0);
        assert!(w.admit(T0 + 1_000.0));
        assert!(w.admit(T0 + 1_000.0));
        assert!(!w.admit(T0 + 1_999.0));
    }

    #[test]
    fn the_window_starts_at_its_first_event_not_at_a_fixed_grid() {
        let mut w = RateWindow::new(1, 1_000.0);
        assert!(w.admit(T0 + 700.0));
        // T0 + 1_000 would be a grid boundary; this window runs until T0 + 1_700.
        assert!(!w.admit(T0 + 1_600.0));
        assert!(w.admit(T0 + 1_700.0));
    }

    #[test]
    fn roll_inside_the_window_changes_nothing() {
        let mut w = RateWindow::new(1, 1_000.0);
        assert!(w.admit(T0));
        assert!(!w.admit(T0));
        assert_eq!(w.roll(T0 + 10.0), 0);
        assert_eq!(w.dropped(), 1);
        assert!(!w.admit(T0 + 10.0));
    }

    #[test]
    fn a_clock_that_goes_back_opens_a_new_window_at_once() {
        let mut w = RateWindow::new(3, 1_000.0);
        assert_eq!(admitted(&mut w, T0, 5), 3);
        // The clock jumps back an hour: the limit is not closed until it catches up.
        let back = T0 - 3_600_000.0;
        assert_eq!(w.roll(back), 2);
        assert_eq!(admitted(&mut w, back, 5), 3);
        // From there the window runs forward as usual.
        assert!(!w.admit(back + 999.0));
        assert!(w.admit(back + 1_000.0));
    }

    #[test]
    fn a_small_step_back_also_opens_a_new_window_but_never_more_than_limit_per_window() {
        let mut w = RateWindow::new(2, 1_000.0);
        assert_eq!(admitted(&mut w, T0, 2), 2);
        assert_eq!(admitted(&mut w, T0 - 1.0, 3), 2);
        assert_eq!(admitted(&mut w, T0 - 1.0 + 999.0, 3), 0);
    }

    #[test]
    fn a_zero_limit_admits_nothing() {
        let mut w = RateWindow::new(0, 1_000.0);
        assert!(!w.admit(T0));
        assert_eq!(w.dropped(), 1);
    }

    #[test]
    fn the_first_event_opens_the_first_window_whatever_the_clock_reads() {
        let mut w = RateWindow::new(1, 1_000.0);
        assert!(w.admit(0.0));
        assert!(!w.admit(999.0));
        let mut w = RateWindow::new(1, 1_000.0);
        assert!(w.admit(-5.0));
        assert_eq!((w.limit(), w.window_ms()), (1, 1_000.0));
    }

    #[test]
    fn the_accessors_report_what_the_window_was_made_with() {
        let w = RateWindow::new(100, 250.0);
        assert_eq!((w.limit(), w.window_ms()), (100, 250.0));
    }
}
