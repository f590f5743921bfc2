//! The platform seam: the few browser APIs the host's data layer uses, each behind a small
//! Rust helper, so `mirror`, `cache`, `uploads` and `sync` ask this module for time, storage,
//! locks and channels instead of each other. Nothing here knows about documents, buckets or
//! the outbox, and nothing here imports another module of this crate.
//!
//! - [`sleep`] and [`now`]: the browser's timer and clock (`time.rs`);
//! - [`EventListener`]: an `addEventListener` that is removed when the value is dropped
//!   (gloo-events' own type, re-exported);
//! - [`local_storage_get`] and [`local_storage_set`]: `window.localStorage`, absent in opaque
//!   origins and some privacy modes (`storage.rs`);
//! - [`with_lock`]: a Web Lock held while a future runs (`locks.rs`);
//! - [`Channel`]: a BroadcastChannel of text messages, closed when dropped (`channel.rs`).

mod channel;
mod locks;
mod storage;
mod time;

pub use channel::Channel;
/// An `addEventListener` registration removed (`removeEventListener`) when dropped, so a
/// torn-down owner leaves no handler that calls into freed state: `EventListener::new(&target,
/// "online", |event| ...)`. gloo-events' type; measured against a hand-written equivalent with
/// the engine's window listeners moved onto it: +271 B gzip for the host (wasm + JS).
pub use gloo_events::EventListener;
pub use locks::with_lock;
pub use storage::{local_storage_get, local_storage_set};
pub use time::{now, sleep};
