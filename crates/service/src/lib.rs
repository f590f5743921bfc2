//! The monodit backend's service layer, free of I/O and of any runtime: what the server
//! decides, apart from how it reads the facts and stores the outcome.
//!
//! An adapter (the native axum + SQLite server today; a Workers + D1 + R2 one later) reads
//! the facts a decision needs inside its transaction, asks a rule here, and executes the
//! answer. Nothing in this crate touches a clock, a random source, a file or a socket:
//! those come from an [`Env`] the adapter provides, so the crate builds for native and for
//! `wasm32-unknown-unknown` (where `SystemTime::now()` panics).
//!
//! - [`assets`]: object keys, display names, content types, inline rule, ranges.
//! - [`env`](mod@env): the injected clock, random bytes and secrets.
//! - [`quota`]: the quota check (checked arithmetic: a sum past `u64::MAX` never fits).
//! - [`validate`]: id, schema and idempotency-key grammars.
//! - [`rules`]: the document write rule and the upload reservation rule.
//! - [`uploads`]: idempotency replays, resumable sessions' key, part and completion rules.
//! - [`signing`]: signed download URLs.

#![deny(missing_docs)]

pub mod assets;
pub mod collections;
pub mod env;
pub mod instances;
pub mod quota;
pub mod rules;
pub mod signing;
pub mod uploads;
pub mod validate;

pub use env::{Clock, Env, Random, Secret, Secrets};
