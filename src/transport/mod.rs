//! Both ends of the MessagePort RPC and the window handshake that hands a widget its port.
//!
//! Why a port per iframe: sandboxed iframes all have origin `"null"`, so origins cannot tell
//! two widgets apart; a private `MessagePort` can. The host posts exactly one handshake per
//! iframe document (`targetOrigin "*"` is safe: the message carries only a fresh port, and
//! only the iframe's own window receives it); everything after travels on the port.
//!
//! - [`Client`] (widget side): request ids, one timeout per call, progress and subscription
//!   events, and transparent port replacement when the host re-handshakes (pending calls are
//!   re-sent on the new port and subscriptions re-established with the same ids).
//! - [`Server`] (host side): decodes every message (`crate::decode`, behind
//!   [`crate::protocol`]'s paths), answers errors
//!   for anything malformed, caps the calls in flight, and goes silent once closed.
//!
//! Split by job: `client.rs` (widget side), `server.rs` (host side: the port server, its
//! flood limits and at-most-once calls, the handshake that opens a port).

mod client;
#[cfg(feature = "host")]
mod server;

pub(crate) use client::set_timeout;
pub use client::{listen_for_handshakes, on_err, on_ok, then_raw, Client, PortListener};
#[cfg(feature = "host")]
pub use server::{
    handshake, CallLog, Handler, OnDropped, Sender, Server, CALL_REPLAY_MAX, CALL_REPLAY_MS,
};

use js_sys::Reflect;
use wasm_bindgen::JsValue;

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

fn now() -> f64 {
    js_sys::Date::now()
}
