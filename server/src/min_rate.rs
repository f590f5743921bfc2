//! A minimum rate for request bodies.
//!
//! The body timeout of [`crate::serve`] is per chunk, so on its own a client keeps a connection
//! (and an upload's quota reservation) for as long as it likes by sending one byte just before
//! each timeout. [`MinRateBody`] also asks every body for at least `min_rate` bytes per second
//! over each `window` of time spent waiting for it. Only time the server spends waiting for the
//! client counts: while a handler is busy elsewhere (writing to disk, waiting for the database)
//! it does not poll the body, and the client is not charged for that.

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The rate a body must keep: `bytes_per_sec` over each `window` of waiting (0 = no check).
#[derive(Debug, Clone, Copy)]
pub struct MinRate {
    /// Bytes per second, averaged over a window.
    pub bytes_per_sec: u64,
    /// How much waiting time one check covers.
    pub window: Duration,
}

/// The error a body too slow for its [`MinRate`] fails with (reported like a body timeout).
#[derive(Debug)]
pub struct TooSlow {
    /// Bytes received in the window that failed.
    pub bytes: u64,
    /// The rate asked for.
    pub min_rate: u64,
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body arrived slower than {} bytes per second ({} bytes in the last window)",
            self.min_rate, self.bytes
        )
    }
}

impl std::error::Error for TooSlow {}

/// Wraps a request body with the [`MinRate`] check.
pub struct MinRateBody<B> {
    inner: Pin<Box<B>>,
    rate: MinRate,
    /// Since when the current `poll_frame` has been waiting (None: not waiting).
    waiting_since: Option<Instant>,
    /// Waiting time and bytes of the current window.
    waited: Duration,
    bytes: u64,
}

impl<B> MinRateBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, rate: MinRate) -> Self {
        MinRateBody {
            inner: Box::pin(inner),
            rate,
            waiting_since: None,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// Counts one frame's bytes; past a window, checks and starts the next one.
    fn account(&mut self, len: u64) -> Result<(), TooSlow> {
        self.bytes = self.bytes.saturating_add(len);
        if self.rate.bytes_per_sec == 0 || self.waited < self.rate.window {
            return Ok(());
        }
        let needed = u128::from(self.rate.bytes_per_sec) * self.waited.as_millis() / 1000;
        if u128::from(self.bytes) < needed {
            return Err(TooSlow {
                bytes: self.bytes,
                min_rate: self.rate.bytes_per_sec,
            });
        }
        self.waited = Duration::ZERO;
        self.bytes = 0;
        Ok(())
    }
}

impl<B> Body for MinRateBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let Poll::Ready(frame) = this.inner.as_mut().poll_frame(cx) else {
            return Poll::Pending;
        };
        this.waiting_since = None;
        this.waited += since.elapsed();
        Poll::Ready(match frame {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                match this.account(len) {
                    Ok(()) => Some(Ok(frame)),
                    Err(slow) => Some(Err(Box::new(slow))),
                }
            }
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rate: u64) -> MinRateBody<axum::body::Body> {
        MinRateBody::new(
            axum::body::Body::empty(),
            MinRate {
                bytes_per_sec: rate,
                window: Duration::from_secs(10),
            },
        )
    }

    #[test]
    fn a_window_at_the_rate_passes_and_one_byte_short_fails() {
        let mut b = body(100);
        b.waited = Duration::from_secs(10);
        assert!(b.account(1000).is_ok(), "exactly 100 B/s over 10 s");
        assert_eq!((b.waited, b.bytes), (Duration::ZERO, 0), "next window");
        b.waited = Duration::from_secs(10);
        let err = b.account(999).unwrap_err();
        assert_eq!((err.bytes, err.min_rate), (999, 100));
    }

    #[test]
    fn nothing_is_judged_before_a_window_or_with_no_rate() {
        let mut b = body(100);
        b.waited = Duration::from_millis(9_999);
        assert!(b.account(0).is_ok());
        let mut off = body(0);
        off.waited = Duration::from_secs(60);
        assert!(off.account(0).is_ok());
    }
}
