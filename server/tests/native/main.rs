//! Native-only tests: they need the native server process itself (its `Config` and CLI
//! flags, its SQLite file, its object and staging directories, its connection edge, `kill -9`),
//! so they cannot run against another backend. Each starts its own server on 127.0.0.1:0 with
//! a temporary directory. Black-box API tests are in `tests/conformance/`.
//!
//! Why each module is native-only:

/// `Srv::start_with`, `sql()`, the data directories: only this target may use them.
#[path = "../support/native.rs"]
mod native_support;
#[path = "../support/mod.rs"]
mod support;

/// Asserts on object files, `users.reserved_bytes`, asset rows and signing keys in SQLite, and
/// on `--max-upload-bytes` and `--allow-origin`.
mod assets;
/// Checks that deleting an asset bucket removes its object files.
mod buckets;
/// Runs the binary: the ready file, SIGTERM, argument errors, CLI flags, RSS, descriptor limits.
mod cli;
/// Waits for the background indexer by reading `sqlite_master`; query plans, direct SQL set-up.
mod collections;
/// CORS answers depend on the `--allow-origin` list and `--static` files.
mod cors;
/// `kill -9` of the binary at many points, then a restart on the same files.
mod crash;
/// Needs a server without `--dev`.
mod documents;
/// The native connection edge (hyper timeouts, connection cap, descriptor limit), tuned per test.
mod edge;
/// Needs a server without `--dev`; raw unparsable requests answered by the hyper edge.
mod hostile;
/// Upgrades a database file written before kv existed.
mod kv;
/// Index counts and pins read from SQLite, and `Config::max_index_definitions`.
mod limits;
/// Sets usage and plans directly in SQLite to reach the limit, reads reservations from it.
mod quota;
/// The sweep over the object and staging directories, with a short `--sweep-interval-secs`.
mod sweep;
/// Reservations read from SQLite, staged part files on disk, `--upload-ttl-secs`, `--max-upload-bytes`.
mod uploads;
