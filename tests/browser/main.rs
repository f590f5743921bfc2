//! Every browser test of the crate in ONE wasm test binary: it compiles and links once and
//! wasm-pack starts one browser session, instead of one per file (issue 12). Each module is
//! a scenario family; tests share one page, so each makes its own user, instance ids and
//! database names (`data_support::unique`, fresh users) and restores any global it touches.
//!
//! Run against a real server: `scripts/with-server.sh wasm-pack test --headless --chrome
//! --mode no-install` (one module: append `-- --test browser -- <module>::`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

/// Helpers of the bridge tests (host, transport, iframes, store writes).
mod bridge_support;
/// Helpers of the data-layer tests (engine, mirror, cache, uploads).
mod data_support;

mod bridge_host;
mod bridge_iframe;
mod bridge_transport;
mod data_assets;
mod data_cache;
mod data_memory;
mod data_outbox;
mod data_sync;
mod data_uploads;
mod data_warm;
mod data_web;
/// One suite over both stores of the local mirror (memory and IndexedDB).
mod mirror;
mod pipeline;
mod store_writes;
