//! Business rules over SQL, independent of axum.
//!
//! Each function takes a `rusqlite::Transaction` (one request = one transaction), validates
//! its input, enforces the seed rules (contracts, quotas, idempotency) and returns wire types
//! from `monodit_core::api` or a coded error. The SQL is portable across SQLite, libSQL and
//! D1, so a Workers adapter can port these functions statement by statement; the HTTP layer
//! only parses requests and renders answers.

pub mod assets;
pub mod buckets;
pub mod collections;
pub mod documents;
pub mod instances;
pub mod kv;
pub mod plugins;
pub mod quota;
pub mod rules;
pub mod uploads;
pub mod users;
pub mod validate;
