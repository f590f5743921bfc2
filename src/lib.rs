//! monodit-bridge: safe, fast storage for untrusted dashboard widgets.
//!
//! One crate, two builds (cargo features):
//! - `widget`: [`widget::connect`] and the `ctx` facades that run inside a widget iframe.
//! - `host`: [`host::Host`], which binds each iframe to a private `MessagePort`, enforces the
//!   manifest's storage contract, and serves calls from the local-first mirror and the backend.
//!
//! Layers, bottom up: `protocol` (port wire types) → `decode` (inbound port messages, host
//! side) → `transport` (port RPC) → `web` (timers, listeners, storage, locks, channels) →
//! `http` (backend client) → `mirror` (IndexedDB) → `sync` (buckets, outbox, revalidation,
//! events) / `cache` → `host` (router, contracts) and `widget` (ctx surface).
//! See docs/ARCHITECTURE.md.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

pub mod errors;
pub mod protocol;
pub mod transport;

#[cfg(feature = "widget")]
pub mod widget;

#[cfg(feature = "host")]
pub mod cache;
#[cfg(feature = "host")]
mod decode;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "host")]
pub mod http;
#[cfg(feature = "host")]
pub mod mirror;
#[cfg(feature = "host")]
pub mod sync;
#[cfg(feature = "host")]
pub mod uploads;
#[cfg(feature = "host")]
pub mod web;
