//! The widget side: `connect()` and the `ctx` a widget author writes against.
//!
//! Kept deliberately thin (every kilobyte is downloaded by every widget): no serde, no JSON
//! codec, only plain JS objects forwarded over the port. All checks that matter happen on the
//! host, which never trusts what arrives here. The handshake and the transport client are
//! Rust; the `ctx` facades that only shape calls are plain JS (`ctx.js`, through [`Port`]),
//! which downloads smaller than one wasm-bindgen export per facade method. Rust callers get
//! the same `ctx` through [`Ctx`] and the typed bindings of `bindings.rs`.

mod alloc;
mod bindings;
mod typings;

pub use bindings::{Assets, Binding, Cache, CtxObject, Kv, Log, Store};

use crate::protocol::HANDSHAKE_TIMEOUT_MS;
use crate::transport::{listen_for_handshakes, on_err, on_ok, Client, Shared};
use js_sys::{Array, Function, Object, Promise, Reflect};
use monodit_core::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessagePort;

#[wasm_bindgen(module = "/src/widget/ctx.js")]
extern "C" {
    /// Builds the `ctx` object of one connection from its port and the host's init message.
    #[wasm_bindgen(js_name = makeCtx)]
    fn make_ctx(port: Port, init: &JsValue) -> CtxObject;
}

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

enum Handshake {
    Waiting(Function),
    Connecting(Option<MessagePort>),
    Connected(Client),
}

thread_local! {
    // One ctx per document: a second connect() returns the same promise, so one widget page
    // never asks its host for two handshakes.
    static CONNECTING: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// Connects this widget to its host: waits for the handshake from `window.parent`, then
/// resolves with the `ctx`. Rejects NOT_EMBEDDED at once when the page has no parent, and
/// after `options.timeoutMs` (default 5000) when no host answers. Calling it again returns the
/// same promise (after a failure it tries again).
#[wasm_bindgen(unchecked_return_type = "Promise<Ctx>")]
pub fn connect(
    #[wasm_bindgen(unchecked_optional_param_type = "ConnectOptions")] options: Option<JsValue>,
) -> Promise {
    let options = options.unwrap_or(JsValue::UNDEFINED);
    if let Some(p) = CONNECTING.with(|c| c.read().clone()) {
        return p;
    }
    let timeout = ms_option(&options, "timeoutMs").unwrap_or(HANDSHAKE_TIMEOUT_MS);
    let call_timeout = ms_option(&options, "callTimeoutMs");
    let promise = on_err(&connect_window(timeout, call_timeout), |e| {
        CONNECTING.with(|c| c.mutate().take());
        Err(e)
    });
    CONNECTING.with(|c| *c.mutate() = Some(promise.clone()));
    promise
}

fn ms_option(options: &JsValue, key: &str) -> Option<u32> {
    field(options, key)
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t.min(600_000.0) as u32)
}

fn connect_window(timeout_ms: u32, call_timeout: Option<u32>) -> Promise {
    let state = Rc::new(RefCell::new(None::<Handshake>));
    let port = Promise::new(&mut |resolve, _| {
        *state.mutate() = Some(Handshake::Waiting(resolve));
    });
    let st = state.clone();
    let first_error = Rc::new(RefCell::new(None::<JsValue>));
    let fe = first_error.clone();
    let listening = listen_for_handshakes(move |port| {
        let mut s = st.mutate();
        match (s.as_mut(), port) {
            (Some(Handshake::Waiting(resolve)), Ok(port)) => {
                let _ = resolve.call1(&JsValue::NULL, &port);
                *s = Some(Handshake::Connecting(None));
            }
            (Some(Handshake::Waiting(_)), Err(e)) => *fe.mutate() = Some(e),
            (Some(Handshake::Connecting(latest)), Ok(port)) => *latest = Some(port),
            (Some(Handshake::Connected(client)), Ok(port)) => client.replace_port(port),
            _ => {}
        }
    });
    if let Err(e) = listening {
        return Promise::reject(&e);
    }
    let timer = Promise::new(&mut |resolve, _| {
        let cb = crate::transport::once(move |_| resolve.call0(&JsValue::NULL));
        crate::transport::set_timeout(cb.unchecked_ref(), timeout_ms);
    });
    let raced = Promise::race(&Array::of2(&port, &timer));
    on_ok(&raced, move |got| {
        let Ok(port) = got.dyn_into::<MessagePort>() else {
            // No handshake in time: a host that speaks another version is the likelier
            // story when it did talk to us.
            return Err(first_error.mutate().take().unwrap_or_else(|| {
                crate::transport::code_error(
                    ErrorCode::NotEmbedded,
                    "no host answered: connect() must run in an iframe mounted by a monodit Host",
                )
            }));
        };
        let on_connected = move |client: &Client| {
            if let Some(ms) = call_timeout {
                client.set_call_timeout(ms);
            }
            // A re-handshake that arrived while the first port was set up wins.
            let latest = match state.mutate().replace(Handshake::Connected(client.clone())) {
                Some(Handshake::Connecting(latest)) => latest,
                _ => None,
            };
            if let Some(port) = latest {
                client.replace_port(port);
            }
        };
        Ok(connect_port_promise(port, timeout_ms.max(1000), on_connected).into())
    })
}

fn connect_port_promise(
    port: MessagePort,
    timeout_ms: u32,
    on_connected: impl FnOnce(&Client) + 'static,
) -> Promise {
    let (client, init) = Client::start(port, timeout_ms);
    on_ok(&init, move |init| {
        on_connected(&client);
        Ok(make_ctx(Port { client }, &init).into())
    })
}

/// Connects a ctx to a port directly (tests, and hosts that hand out ports another way,
/// e.g. a worker). Normal widgets call `connect()`.
#[doc(hidden)]
#[wasm_bindgen(js_name = connectPort, unchecked_return_type = "Promise<Ctx>")]
pub fn connect_port_js(port: MessagePort) -> Promise {
    connect_port_promise(port, HANDSHAKE_TIMEOUT_MS, |_| {})
}

/// Rust entry point of [`connect_port_js`] (for Rust callers and tests).
pub async fn connect_port(port: MessagePort, timeout_ms: u32) -> Result<Ctx, JsValue> {
    let (client, init) = Client::start(port, timeout_ms);
    let init = wasm_bindgen_futures::JsFuture::from(init).await?;
    let object = make_ctx(
        Port {
            client: client.clone(),
        },
        &init,
    );
    Ok(Ctx { object, client })
}

/// The `ctx` as Rust sees it: the JS object `connect()` resolves with (its facades through
/// `Deref`, see `bindings.rs`) and the client under it.
pub struct Ctx {
    object: CtxObject,
    client: Client,
}

impl std::ops::Deref for Ctx {
    type Target = CtxObject;
    fn deref(&self) -> &CtxObject {
        &self.object
    }
}

impl Ctx {
    /// Changes the per-call timeout (what `connect({callTimeoutMs})` sets).
    pub fn set_call_timeout(&self, ms: u32) {
        self.client.set_call_timeout(ms);
    }

    /// The JS object itself (what `connect()` resolves with).
    pub fn object(&self) -> &CtxObject {
        &self.object
    }
}

/// The transport client as `ctx.js` sees it: every `ctx.*` method is built from these few
/// exports (one wasm-bindgen shim each, instead of one per facade method).
#[doc(hidden)]
#[wasm_bindgen(skip_typescript)]
pub struct Port {
    client: Client,
}

#[wasm_bindgen]
impl Port {
    /// Sends `{id, op, args}`; resolves with the answer's value. `progress(loaded, total)`
    /// gets upload progress, `queued()` runs once the host holds the write in its outbox.
    pub fn call(
        &self,
        op: JsValue,
        args: JsValue,
        progress: Option<Function>,
        queued: Option<Function>,
    ) -> Promise {
        self.client.call_with(op, args, progress, queued)
    }

    /// Subscribes under a fresh id, written to `args.subscription`: events go to `callback`.
    /// Resolves or rejects with the host's answer (NO_BINDING, ...).
    pub fn subscribe(&self, op: JsValue, args: Object, callback: Function) -> Promise {
        self.client.subscribe(op, args, callback)
    }

    /// Drops subscription `id` (no more callbacks) and tells the host with `op`.
    pub fn unsubscribe(&self, id: u32, op: JsValue) {
        self.client.unsubscribe(id, op);
    }

    /// Closes the port (pending calls reject CLOSED).
    pub fn close(&self) {
        self.client.close();
    }

    /// Sets the callback for config changes (`{event: "config"}`, a re-handshake's init).
    #[wasm_bindgen(js_name = onConfig)]
    pub fn on_config(&self, callback: Function) {
        self.client.on_config(callback);
    }
}
