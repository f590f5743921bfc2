//! Target-independent rules of monodit-bridge, shared by the wasm SDK and the server.
//!
//! - [`errors`]: the one table of stable error codes.
//! - [`manifest`]: widget manifests, storage contracts and collection declarations,
//!   validated with every problem reported by JSON path.
//! - [`buckets`]: bucket resolution and contract compatibility.
//! - [`query`]: the collection query model, validation against declared indexes, and the
//!   SQL planner for SQLite / libSQL / D1.
//! - [`cursor`]: opaque, tamper-evident keyset cursors.
//! - [`limits`]: what one user may create on the server (instances, plugin ids, indexes).
//! - [`kv`]: plugin key-value storage (`ctx.kv`): wire types and limits.
//! - [`plugins`]: who may claim a plugin id (the widget source it is pinned to).
//! - [`ops`]: the collection ops' names and read/write class.
//! - [`outbox`]: queued document writes: superseding, version conditions, failure outcomes.
//! - [`queue`]: one bucket's document queue as a pure state machine applying those rules.
//! - [`routes`]: route patterns and path builders, for the server's router and the SDK's client.
//! - [`rate`]: a fixed rate window (at most n events per window, the rest counted).
//! - [`api`]: HTTP wire types and the route table.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod buckets;
pub mod cursor;
pub mod errors;
pub mod kv;
pub mod limits;
pub mod manifest;
pub mod ops;
pub mod outbox;
pub mod plugins;
pub mod query;
pub mod queue;
pub mod rate;
pub mod routes;
pub mod slots;

pub use errors::{Error, ErrorCode, Result};
