//! Conformance tests: black-box tests of the HTTP API, over HTTP only, that any backend
//! serving it must pass. With `MONODIT_CONFORMANCE_URL` set they run against that server
//! (started by someone else in dev mode, its database shared: each test makes its own users
//! through the documented dev routes and assumes no server flags but one: CORS trusts the origin
//! `http://app.test`, as a native test server does); otherwise each test starts
//! a fresh native server. Tests that need the native process are in `tests/native/`.
//!
//! Backends that serve part of the API so far run the tests their list names
//! (`worker.list`: the Cloudflare Worker, `crates/worker`) through
//! `scripts/worker-conformance.sh` (`MONODIT_CONFORMANCE_BACKEND` picks the list), which
//! reports every other test by name as not yet on that backend. Tests are never changed to
//! fit a backend.

#[path = "../support/mod.rs"]
mod support;

mod assets;
mod buckets;
mod cors;
mod documents;
mod hostile;
mod indexes;
mod kv;
mod limits;
mod openapi;
mod plugins;
mod quota;
mod uploads;
