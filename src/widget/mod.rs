//! The widget side: `connect()` and the `ctx` facades a widget author writes against.
//!
//! Kept deliberately thin (every kilobyte is downloaded by every widget): no serde, no JSON
//! codec, only plain JS objects forwarded over the port. All checks that matter happen on the
//! host, which never trusts what arrives here; the checks below only give authors earlier,
//! clearer errors.

mod alloc;
mod assets;
mod facades;
mod storage;
mod store;
mod typings;

pub use assets::Assets;
pub use facades::{Cache, Kv, Log};
pub use storage::StorageCollection;
pub use store::Store;

use crate::errors;
use crate::protocol::HANDSHAKE_TIMEOUT_MS;
use crate::transport::{listen_for_handshakes, on_err, on_ok, Client};
use js_sys::{Array, Function, Object, Promise, Reflect};
use monodit_core::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use storage::storage_proxy;
use store::Updates;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessagePort;

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// Every facade method sends through this one out-of-line function, so the RPC setup
/// (promise, pending entry, post) is not inlined into each exported method: a smaller
/// download for every widget.
#[inline(never)]
fn send(client: &Client, op: &'static str, args: JsValue) -> Promise {
    client.call(op, args, None)
}

/// Resolves `promise`, then maps the value with `f`.
fn map_promise(promise: Promise, f: fn(JsValue) -> JsValue) -> Promise {
    on_ok(&promise, move |v| Ok(f(v)))
}

fn undefined(_: JsValue) -> JsValue {
    JsValue::UNDEFINED
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
    if let Some(p) = CONNECTING.with(|c| c.borrow().clone()) {
        return p;
    }
    let timeout = ms_option(&options, "timeoutMs").unwrap_or(HANDSHAKE_TIMEOUT_MS);
    let call_timeout = ms_option(&options, "callTimeoutMs");
    let promise = on_err(&connect_window(timeout, call_timeout), |e| {
        CONNECTING.with(|c| c.borrow_mut().take());
        Err(e)
    });
    CONNECTING.with(|c| *c.borrow_mut() = Some(promise.clone()));
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
        *state.borrow_mut() = Some(Handshake::Waiting(resolve));
    });
    let st = state.clone();
    let first_error = Rc::new(RefCell::new(None::<JsValue>));
    let fe = first_error.clone();
    let listening = listen_for_handshakes(move |port| {
        let mut s = st.borrow_mut();
        match (s.as_mut(), port) {
            (Some(Handshake::Waiting(resolve)), Ok(port)) => {
                let _ = resolve.call1(&JsValue::NULL, &port);
                *s = Some(Handshake::Connecting(None));
            }
            (Some(Handshake::Waiting(_)), Err(e)) => *fe.borrow_mut() = Some(e),
            (Some(Handshake::Connecting(latest)), Ok(port)) => *latest = Some(port),
            (Some(Handshake::Connected(client)), Ok(port)) => client.replace_port(port),
            _ => {}
        }
    });
    if let Err(e) = listening {
        return Promise::reject(&e);
    }
    let timer = Promise::new(&mut |resolve, _| {
        let cb = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let _ = web_sys::window().map(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(
                cb.unchecked_ref(),
                timeout_ms as i32,
            )
        });
    });
    let raced = Promise::race(&Array::of2(&port, &timer));
    on_ok(&raced, move |got| {
        let Ok(port) = got.dyn_into::<MessagePort>() else {
            // No handshake in time: a host that speaks another version is the likelier
            // story when it did talk to us.
            return Err(first_error.borrow_mut().take().unwrap_or_else(|| {
                errors::code_error(
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
            let latest = match state
                .borrow_mut()
                .replace(Handshake::Connected(client.clone()))
            {
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
        let ctx = build_ctx(client, &init)?;
        on_connected(&ctx.client);
        Ok(ctx.into())
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
    build_ctx(client, &init)
}

fn build_ctx(client: Client, init: &JsValue) -> Result<Ctx, JsValue> {
    let names = field(init, "collections");
    let collections: Vec<String> = if Array::is_array(&names) {
        Array::from(&names)
            .iter()
            .filter_map(|n| n.as_string())
            .collect()
    } else {
        Vec::new()
    };
    let shared = Rc::new(Shared {
        config: RefCell::new(field(init, "config")),
        listeners: RefCell::new(Vec::new()),
        next_listener: RefCell::new(1),
    });
    let s = shared.clone();
    let on_config = Closure::<dyn FnMut(JsValue)>::new(move |config: JsValue| {
        *s.config.borrow_mut() = config.clone();
        let listeners: Vec<Function> = s
            .listeners
            .borrow()
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        for f in listeners {
            // One throwing listener must not starve the others.
            let _ = f.call1(&JsValue::NULL, &config);
        }
    });
    client.on_config(on_config.into_js_value().unchecked_into());
    let storage = storage_proxy(&client, &collections)?;
    Ok(Ctx {
        client,
        instance_id: field(init, "instanceId").as_string().unwrap_or_default(),
        kind: field(init, "kind").as_string().unwrap_or_default(),
        bindings: field(init, "bindings"),
        shared,
        storage,
        updates: Rc::new(RefCell::new(JsValue::UNDEFINED)),
    })
}

struct Shared {
    config: RefCell<JsValue>,
    listeners: RefCell<Vec<(u32, Function)>>,
    next_listener: RefCell<u32>,
}

/// The object `connect()` resolves with.
#[wasm_bindgen]
pub struct Ctx {
    client: Client,
    instance_id: String,
    kind: String,
    bindings: JsValue,
    shared: Rc<Shared>,
    /// The page's `ctx.store.update()` queue (see [`Updates`]).
    updates: Updates,
    storage: JsValue,
}

#[wasm_bindgen]
impl Ctx {
    /// This widget's instance id (chosen by the host; the widget never names it).
    #[wasm_bindgen(getter, js_name = instanceId)]
    pub fn instance_id(&self) -> String {
        self.instance_id.clone()
    }

    /// `"widget"` or `"theme"`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.clone()
    }

    /// The current instance config (updated before `onConfigChange` callbacks run).
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, unknown>")]
    pub fn config(&self) -> JsValue {
        self.shared.config.borrow().clone()
    }

    /// The manifest's storage bindings as the host sees them: `[{key, backend}]`.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "Array<{key: string, backend: \"d1-json\" | \"r2-assets\"}>"
    )]
    pub fn bindings(&self) -> JsValue {
        self.bindings.clone()
    }

    /// Calls `cb(config)` after every config change (the host has already re-bound store and
    /// assets subscriptions to the new buckets). Returns a function that unsubscribes.
    #[wasm_bindgen(js_name = onConfigChange, unchecked_return_type = "() => void")]
    pub fn on_config_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(config: Record<string, unknown>) => void")]
        cb: Function,
    ) -> Function {
        let id = {
            let mut n = self.shared.next_listener.borrow_mut();
            *n += 1;
            *n
        };
        self.shared.listeners.borrow_mut().push((id, cb));
        let shared = Rc::downgrade(&self.shared);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(s) = shared.upgrade() {
                s.listeners.borrow_mut().retain(|(i, _)| *i != id);
            }
        })
        .into_js_value()
        .unchecked_into()
    }

    /// `ctx.store`: the manifest's (first) d1-json binding.
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: JsValue::UNDEFINED,
            updates: self.updates.clone(),
        }
    }

    /// `ctx.assets`: the manifest's (first) r2-assets binding.
    #[wasm_bindgen(getter)]
    pub fn assets(&self) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: JsValue::UNDEFINED,
            bucket: JsValue::UNDEFINED,
        }
    }

    /// `ctx.binding(key)`: store and assets of a named binding, for manifests that declare
    /// more than one binding of a backend.
    pub fn binding(&self, key: String) -> Binding {
        Binding {
            updates: self.updates.clone(),
            client: self.client.clone(),
            key: JsValue::from_str(&key),
        }
    }

    /// `ctx.cache`: browser-only, per instance, never sent to the server.
    #[wasm_bindgen(getter)]
    pub fn cache(&self) -> Cache {
        Cache {
            client: self.client.clone(),
        }
    }

    /// `ctx.kv`: per-plugin settings and state on the server.
    #[wasm_bindgen(getter, unchecked_return_type = "KV")]
    pub fn kv(&self) -> Kv {
        Kv {
            client: self.client.clone(),
        }
    }

    /// `ctx.log`: messages to the host's console and event log.
    #[wasm_bindgen(getter, unchecked_return_type = "Log")]
    pub fn log(&self) -> Log {
        Log {
            client: self.client.clone(),
        }
    }

    /// `ctx.storage`: the declared collections.
    #[wasm_bindgen(getter, unchecked_return_type = "Storage")]
    pub fn storage(&self) -> JsValue {
        self.storage.clone()
    }

    /// Closes the port (pending calls reject CLOSED). Pages normally never call this.
    pub fn close(&self) {
        self.client.close();
    }
}

impl Ctx {
    /// Changes the per-call timeout (what `connect({callTimeoutMs})` sets).
    pub fn set_call_timeout(&self, ms: u32) {
        self.client.set_call_timeout(ms);
    }
}

/// A named binding's facades (`ctx.binding(key)`).
#[wasm_bindgen]
pub struct Binding {
    client: Client,
    key: JsValue,
    updates: Updates,
}

#[wasm_bindgen]
impl Binding {
    /// Document store of this binding (d1-json).
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: self.key.clone(),
            updates: self.updates.clone(),
        }
    }

    /// Asset bucket of this binding (r2-assets).
    #[wasm_bindgen(getter)]
    pub fn assets(&self) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: self.key.clone(),
            bucket: JsValue::UNDEFINED,
        }
    }
}

fn with_binding(args: Object, binding: &JsValue) -> JsValue {
    if !binding.is_undefined() {
        let _ = Reflect::set(&args, &"binding".into(), binding);
    }
    args.into()
}

/// Builds the unsubscribe function handed to authors; calling it twice is harmless.
fn unsubscriber(client: &Client, id: u32, op: &'static str) -> Function {
    let client = client.clone();
    let mut done = false;
    Closure::<dyn FnMut()>::new(move || {
        if !done {
            done = true;
            client.unsubscribe(id, op);
        }
    })
    .into_js_value()
    .unchecked_into()
}

/// Reports a failed subscribe: to `on_error` when given, else to the console (a subscription
/// has no promise an author could catch).
fn report_subscribe_failure(answer: Promise, on_error: Option<Function>) {
    let handler = Closure::once_into_js(move |err: JsValue| match on_error {
        Some(f) => {
            let _ = f.call1(&JsValue::NULL, &err);
        }
        None => web_sys::console::error_2(&"monodit: subscribe failed".into(), &err),
    });
    // `Promise.prototype.catch` through JS: the handler is a JS-owned once-closure.
    if let Ok(catch) = Reflect::get(&answer, &"catch".into()) {
        let _ = catch.unchecked_into::<Function>().call1(&answer, &handler);
    }
}
