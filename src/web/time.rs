//! The browser's timer and clock.

/// Sleeps on the browser's timer (0 ms = next macrotask; a negative `ms` counts as 0). The
/// timer is cleared when the future is dropped unfinished (a lost race, a cancelled wait).
pub async fn sleep(ms: i32) {
    gloo_timers::future::TimeoutFuture::new(ms.max(0) as u32).await;
}

/// Milliseconds since the epoch (`Date.now()`; `SystemTime::now()` panics on
/// wasm32-unknown-unknown).
pub fn now() -> f64 {
    js_sys::Date::now()
}
