//! Conformance tests: black-box tests of the HTTP API, over HTTP only, that any backend
//! serving it must pass. With `MONODIT_CONFORMANCE_URL` set they run against that server
//! (started by someone else in dev mode, its database shared: each test makes its own users
//! through the documented dev routes and assumes no server flags); otherwise each test starts
//! a fresh native server. Tests that need the native process are in `tests/native/`.

#[path = "../support/mod.rs"]
mod support;

mod assets;
mod buckets;
mod documents;
mod hostile;
mod kv;
mod limits;
mod openapi;
mod plugins;
mod quota;
mod uploads;
