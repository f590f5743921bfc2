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
//! Split by job: `client.rs` (widget side), `hello.rs` (the widget side of the window
//! handshake), `server.rs` (host side: the port server, its flood limits and at-most-once
//! calls, the handshake that opens a port).

mod client;
mod hello;
#[cfg(feature = "host")]
mod server;

#[cfg(feature = "widget")]
pub(crate) use client::{code_error, set_timeout};
pub use client::{on_err, on_ok, once, then_raw, Client, PortListener};
pub use hello::listen_for_handshakes;
#[cfg(feature = "host")]
pub use server::{
    handshake, CallLog, Handler, OnDropped, Sender, Server, CALL_REPLAY_MAX, CALL_REPLAY_MS,
};

use js_sys::Reflect;
use wasm_bindgen::JsValue;

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// `RefCell` borrows that abort instead of panicking: the client never re-enters a borrow,
/// and the formatted panic of `borrow`/`borrow_mut` cost every widget download 0.3 KB gzip
/// (bench/README.md, "Widget bundle steps").
pub(crate) trait Shared<T> {
    /// `borrow_mut()`, aborting when already borrowed.
    fn mutate(&self) -> std::cell::RefMut<'_, T>;
    /// `borrow()`, aborting when mutably borrowed.
    fn read(&self) -> std::cell::Ref<'_, T>;
}

impl<T> Shared<T> for std::cell::RefCell<T> {
    #[inline]
    fn mutate(&self) -> std::cell::RefMut<'_, T> {
        self.try_borrow_mut()
            .unwrap_or_else(|_| std::process::abort())
    }
    #[inline]
    fn read(&self) -> std::cell::Ref<'_, T> {
        self.try_borrow().unwrap_or_else(|_| std::process::abort())
    }
}

fn now() -> f64 {
    js_sys::Date::now()
}
