//! The widget's end of the port ([`Client`]): ids, timeouts, progress, re-handshakes, the
//! calls of a task sent as one batch (the window handshake that brings the port:
//! `hello.rs`).

use super::{field, now, Shared};
use crate::errors;
use crate::protocol::*;
use js_sys::{Array, Function, Object, Promise, Reflect};
use monodit_core::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

struct Pending {
    /// The op name as the caller gave it (a JS string).
    op: JsValue,
    args: JsValue,
    resolve: Function,
    reject: Function,
    deadline: f64,
    idle_ms: u32,
    progress: Option<Function>,
    /// Called once when the host reports the write queued (see `call_queued`).
    queued: Option<Function>,
    /// Posted on the current port (else it waits for a slot, see `pump`).
    sent: bool,
    /// Holds one of the host's in-flight slots: sent, not answered, not reported queued.
    held: bool,
}

struct Subscription {
    op: JsValue,
    args: JsValue,
    callback: Function,
}

/// A tiny id → value map: a handful of entries at a time, and a `Vec` keeps the widget build
/// far smaller than a `BTreeMap`/`HashMap` would.
struct Slots<T>(Vec<(u32, T)>);

impl<T> Slots<T> {
    fn insert(&mut self, id: u32, v: T) {
        self.0.push((id, v));
    }
    fn remove(&mut self, id: &u32) -> Option<T> {
        let i = self.0.iter().position(|(k, _)| k == id)?;
        // Order kept: calls waiting for a slot go out in the order they were made. Rotating
        // the tail (a range `get_mut` cannot panic) instead of `Vec::remove`, whose index
        // panic formats two numbers: 0.5 KB gzip of the widget build.
        self.0.get_mut(i..)?.rotate_left(1);
        self.0.pop().map(|(_, v)| v)
    }
    fn get(&self, id: &u32) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }
    fn get_mut(&mut self, id: &u32) -> Option<&mut T> {
        self.0.iter_mut().find(|(k, _)| k == id).map(|(_, v)| v)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn clear(&mut self) {
        self.0.clear()
    }
}

struct ClientState {
    port: MessagePort,
    next_id: u32,
    pending: Slots<Pending>,
    subs: Slots<Subscription>,
    init: Option<(Function, Function)>,
    on_config: Option<Function>,
    /// The sweeper interval's handle (a number in browsers, an object in Node).
    timer: Option<JsValue>,
    closed: bool,
    /// Closed by the host (unmount), so a later handshake (a new mount) reopens it.
    reopenable: bool,
    call_timeout_ms: u32,
    /// A `pump` is due at the end of this task (calls made together leave as one batch).
    pump_due: bool,
}

impl Drop for ClientState {
    fn drop(&mut self) {
        // The last handle is gone: stop the sweeper interval and release the port.
        self.pending.clear();
        stop_sweeper_if_idle(self);
        self.port.set_onmessage(None);
    }
}

/// The widget's end of the port: `call` returns a promise that settles with the host's
/// reply, or rejects with TIMEOUT / CLOSED.
#[derive(Clone)]
pub struct Client {
    state: Rc<RefCell<ClientState>>,
    // The port's onmessage and the timeout sweeper (which also sends waiting calls at the end
    // of a task), owned by JS (they hold only a weak reference to the state): a dropped client
    // can never leave the port, an interval or a microtask calling into a freed closure.
    handlers: Rc<(Function, Function)>,
}

/// A `message` listener on a port or window.
pub type PortListener = Closure<dyn FnMut(MessageEvent)>;

impl Client {
    /// Attaches to a port; the promise resolves with the host's init message (instance id,
    /// config, declared names) or rejects NOT_EMBEDDED when none arrives in `timeout_ms`,
    /// UNSUPPORTED_PROTOCOL on a version mismatch (the client is then closed). Promise
    /// chains, not `async`: the widget build carries no future executor.
    pub fn start(port: MessagePort, timeout_ms: u32) -> (Client, Promise) {
        let state = Rc::new(RefCell::new(ClientState {
            port: port.clone(),
            // Random per document: the host runs a re-sent call once by its id (see
            // `CallLog`), so a reloaded widget must not reuse its predecessor's ids.
            next_id: (js_sys::Math::random() * f64::from(1u32 << 31)) as u32 + 1,
            pending: Slots(Vec::new()),
            subs: Slots(Vec::new()),
            init: None,
            on_config: None,
            timer: None,
            call_timeout_ms: TIMEOUT_MS,
            closed: false,
            reopenable: false,
            pump_due: false,
        }));
        let weak = Rc::downgrade(&state);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if let Some(state) = weak.upgrade() {
                on_client_message(&state, ev.data());
            }
        });
        let weak = Rc::downgrade(&state);
        let sweep = Closure::<dyn FnMut()>::new(move || {
            if let Some(state) = weak.upgrade() {
                sweep_timeouts(&state);
            }
        });
        let client = Client {
            state,
            handlers: Rc::new((
                on_message.into_js_value().unchecked_into(),
                sweep.into_js_value().unchecked_into(),
            )),
        };
        let init = Promise::new(&mut |resolve, reject| {
            client.state.mutate().init = Some((resolve, reject));
        });
        client.attach(&port);
        let weak = Rc::downgrade(&client.state);
        let timeout = Promise::new(&mut |_, reject| {
            let weak = weak.clone();
            let cb = once(move |_| {
                // Still waiting for init: give the port up (a late init finds it closed).
                if let Some(state) = weak.upgrade() {
                    if state.mutate().init.take().is_some() {
                        close_state(&state);
                        let _ = reject.call1(
                            &JsValue::NULL,
                            &code_error(
                                ErrorCode::NotEmbedded,
                                "the host did not send its init message on the port in time",
                            ),
                        );
                    }
                }
                Ok(JsValue::UNDEFINED)
            });
            set_timeout(cb.unchecked_ref(), timeout_ms);
        });
        let raced = Promise::race(&Array::of2(&init, &timeout));
        (client, raced)
    }

    fn attach(&self, port: &MessagePort) {
        port.set_onmessage(Some(&self.handlers.0));
        port.start();
    }

    /// Changes the per-call timeout (ms) for calls made from now on.
    pub fn set_call_timeout(&self, ms: u32) {
        self.state.mutate().call_timeout_ms = ms.max(1);
    }

    /// Sets the callback for `{event: "config"}` messages.
    pub fn on_config(&self, f: Function) {
        self.state.mutate().on_config = Some(f);
    }

    /// Sends `{id, op, args}` (`op` a JS string) and resolves with the reply's `value`.
    /// `progress(loaded, total)` gets upload progress events. `queued()` runs once the host
    /// holds a write in its durable outbox (from then on the write is going to be sent;
    /// `update()` starts the next read-modify-write of the page at that point). `transfer` is
    /// not used: Blobs are cloned by reference, which is already zero-copy, and a caller's
    /// ArrayBuffer must stay usable after the call.
    pub fn call_with(
        &self,
        op: JsValue,
        args: JsValue,
        progress: Option<Function>,
        queued: Option<Function>,
    ) -> Promise {
        let call_ms = self.state.read().call_timeout_ms;
        let idle_ms = if progress.is_some() || op == "assets.upload" {
            UPLOAD_IDLE_TIMEOUT_MS.max(call_ms)
        } else {
            call_ms
        };
        let state = self.state.clone();
        let handlers = self.handlers.clone();
        Promise::new(&mut move |resolve, reject| {
            let mut st = state.mutate();
            if st.closed {
                let _ = reject.call1(
                    &JsValue::NULL,
                    &code_error(ErrorCode::Closed, "the connection to the host is closed"),
                );
                return;
            }
            let id = st.next_id;
            st.next_id = st.next_id.wrapping_add(1).max(1);
            st.pending.insert(
                id,
                Pending {
                    op: op.clone(),
                    args: args.clone(),
                    resolve,
                    reject,
                    deadline: f64::INFINITY,
                    idle_ms,
                    progress: progress.clone(),
                    queued: queued.clone(),
                    sent: false,
                    held: false,
                },
            );
            ensure_sweeper(&mut st, &handlers.1);
            // Sent at the end of the task, with every other call made in it (the sweeper's
            // pass sends waiting calls).
            if !std::mem::replace(&mut st.pump_due, true) {
                let resolved = Promise::resolve(&JsValue::UNDEFINED);
                let _ = then_raw(&resolved, &handlers.1, &JsValue::UNDEFINED);
            }
        })
    }

    /// Registers a subscription under a fresh id (written to `args.subscription`) and asks
    /// the host for it. Events `{event, subscription: id}` go to `callback(message)`. Returns
    /// the promise of the host's answer (rejects NO_BINDING etc.).
    pub fn subscribe(&self, op: JsValue, args: Object, callback: Function) -> Promise {
        let id = {
            let mut st = self.state.mutate();
            let id = st.next_id;
            st.next_id = st.next_id.wrapping_add(1).max(1);
            id
        };
        let _ = Reflect::set(&args, &"subscription".into(), &JsValue::from(id));
        self.state.mutate().subs.insert(
            id,
            Subscription {
                op: op.clone(),
                args: args.clone().into(),
                callback,
            },
        );
        self.call_with(op, args.into(), None, None)
    }

    /// Drops a subscription locally (no more callbacks) and tells the host.
    pub fn unsubscribe(&self, id: u32, op: JsValue) {
        let removed = self.state.mutate().subs.remove(&id).is_some();
        if removed {
            let args = errors::obj(&[("subscription", &JsValue::from(id))]);
            // Fire and forget: the host drops it on port close anyway.
            let _ = self.call_with(op, args.into(), None, None);
        }
    }

    /// Switches to a new port after a re-handshake: the old port is closed, pending calls
    /// are re-sent (the host never answered them on the dead port), and subscriptions are
    /// re-established under the same ids.
    pub fn replace_port(&self, port: MessagePort) {
        let (old, resend, subs) = {
            let mut st = self.state.mutate();
            if st.closed && !st.reopenable {
                return; // closed by the widget itself (`ctx.close()`): stays closed
            }
            st.closed = false;
            st.reopenable = false;
            let old = std::mem::replace(&mut st.port, port.clone());
            // Calls sent on the old port go again with the same ids (the host runs each once,
            // see `CallLog`; a write it already queued is reported queued again at once);
            // calls still waiting for a slot follow through `pump`.
            let resend: Vec<(u32, JsValue, JsValue)> = st
                .pending
                .0
                .iter()
                .filter(|(_, p)| p.sent)
                .map(|(id, p)| (*id, p.op.clone(), p.args.clone()))
                .collect();
            let subs: Vec<(JsValue, JsValue)> = st
                .subs
                .0
                .iter()
                .map(|(_, s)| (s.op.clone(), s.args.clone()))
                .collect();
            (old, resend, subs)
        };
        old.set_onmessage(None);
        old.close();
        self.attach(&port);
        for (id, op, args) in resend {
            let _ = post_request(&port, id, &op, &args);
        }
        let failed = pump(&mut self.state.mutate());
        reject_each(failed);
        for (op, args) in subs {
            let _ = self.call_with(op, args, None, None);
        }
    }

    /// Closes the port; pending calls reject with CLOSED.
    pub fn close(&self) {
        close_state(&self.state);
    }
}

fn close_state(state: &Rc<RefCell<ClientState>>) {
    let pending = {
        let mut st = state.mutate();
        st.closed = true;
        st.port.set_onmessage(None);
        st.port.close();
        st.subs.clear();
        let pending = std::mem::take(&mut st.pending.0);
        stop_sweeper_if_idle(&mut st);
        pending
    };
    for (_, p) in pending {
        let _ = p.reject.call1(
            &JsValue::NULL,
            &code_error(ErrorCode::Closed, "the connection to the host closed"),
        );
    }
}

/// `promise.then(on_ok, on_err)` with JS functions (or `undefined`).
pub fn then_raw(promise: &Promise, on_ok: &JsValue, on_err: &JsValue) -> Promise {
    promise.unchecked_ref::<Thenable>().then(on_ok, on_err)
}

#[wasm_bindgen]
extern "C" {
    /// A promise seen through its `then`, called with any JS values.
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, on_ok: &JsValue, on_err: &JsValue) -> Promise;
}

/// A Rust once-closure as a JS function. Every once-callback of the widget (promise
/// reactions, timers) goes through this one boxed type, so wasm-bindgen's closure glue is
/// instantiated once instead of once per closure (a smaller widget download).
pub fn once(f: impl FnOnce(JsValue) -> Result<JsValue, JsValue> + 'static) -> JsValue {
    let f: Box<dyn FnOnce(JsValue) -> Result<JsValue, JsValue>> = Box::new(f);
    Closure::once_into_js(f)
}

/// `promise.then(f)` with a Rust once-closure (a returned promise is adopted, an `Err`
/// rejects). No future executor: the widget build stays small.
pub fn on_ok(
    promise: &Promise,
    f: impl FnOnce(JsValue) -> Result<JsValue, JsValue> + 'static,
) -> Promise {
    then_raw(promise, &once(f), &JsValue::UNDEFINED)
}

/// `promise.then(undefined, f)` with a Rust once-closure.
pub fn on_err(
    promise: &Promise,
    f: impl FnOnce(JsValue) -> Result<JsValue, JsValue> + 'static,
) -> Promise {
    then_raw(promise, &JsValue::UNDEFINED, &once(f))
}

/// Sends waiting calls, oldest first, while fewer than the host's in-flight cap are held (one
/// slot stays free for the hello a new port starts with). A widget may make any number of
/// calls at once: the ones past the cap wait here, in order, instead of being refused
/// RATE_LIMITED; a write the host reports queued frees its slot (see `on_client_message`).
/// Calls sent together go as one batch (an array: one `postMessage` for a burst of writes).
/// Returns the calls whose arguments cannot cross the port (to reject, outside the borrow).
fn pump(st: &mut ClientState) -> Vec<(Pending, JsValue)> {
    let mut held = st.pending.0.iter().filter(|(_, p)| p.held).count();
    let batch = Array::new();
    let t = now();
    for (id, p) in st.pending.0.iter_mut() {
        if held >= MAX_IN_FLIGHT - 1 {
            break;
        }
        if p.sent {
            continue;
        }
        batch.push(&request(*id, &p.op, &p.args));
        p.sent = true;
        p.held = true;
        p.deadline = t + f64::from(p.idle_ms);
        held += 1;
    }
    let sent = match batch.length() {
        0 => return Vec::new(),
        1 => st.port.post_message(&batch.get(0)),
        _ => st.port.post_message(&batch),
    };
    if sent.is_ok() {
        return Vec::new();
    }
    // Something in the batch cannot be cloned: send each alone, so only its call fails.
    let mut failed = Vec::new();
    for msg in batch.iter() {
        let id = field(&msg, "id").as_f64().unwrap_or(-1.0) as u32;
        if let Err(e) = st.port.post_message(&msg) {
            if let Some(p) = st.pending.remove(&id) {
                failed.push((p, clone_error(&e)));
            }
        }
    }
    failed
}

fn reject_each(failed: Vec<(Pending, JsValue)>) {
    for (p, e) in failed {
        let _ = p.reject.call1(&JsValue::NULL, &e);
    }
}

fn request(id: u32, op: &JsValue, args: &JsValue) -> JsValue {
    errors::obj(&[("id", &JsValue::from(id)), ("op", op), ("args", args)]).into()
}

fn post_request(port: &MessagePort, id: u32, op: &JsValue, args: &JsValue) -> Result<(), JsValue> {
    port.post_message(&request(id, op, args))
        .map_err(|e| clone_error(&e))
}

// The errors the client rejects with are built in JS (client.js): from Rust each field
// crossed as a string copy and a `Reflect.set`, which cost the widget bundle more.
#[wasm_bindgen(module = "/src/transport/client.js")]
extern "C" {
    #[wasm_bindgen(js_name = monoditError)]
    fn monodit_error(code: &str, detail: &str) -> JsValue;
    #[wasm_bindgen(js_name = wireError)]
    fn wire_error(wire: &JsValue) -> JsValue;
    /// DataCloneError: the widget passed something that cannot cross (a function, a DOM
    /// node); reported as a bad argument instead of a raw DOMException.
    #[wasm_bindgen(js_name = cloneError)]
    fn clone_error(e: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = timeoutError)]
    fn timeout_error(op: &JsValue) -> JsValue;
    /// `window`, or `None` where there is none (a worker). A function rather than an
    /// imported `static`, whose lazy cell cost more.
    #[wasm_bindgen(js_name = pageWindow)]
    pub(super) fn page_window() -> Option<web_sys::Window>;
}

/// The `Error` the widget rejects with (built in JS, see client.js).
pub(crate) fn code_error(code: ErrorCode, detail: &str) -> JsValue {
    monodit_error(code.as_str(), detail)
}

// The timer functions of whatever global scope runs the widget (a page, a worker, Node in
// tests), imported directly: looking them up on `js_sys::global()` cost the
// widget bundle four global-object probes.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(cb: &Function, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(cb: &Function, ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(handle: &JsValue);
}

fn ensure_sweeper(st: &mut ClientState, sweep: &Function) {
    if st.timer.is_none() {
        // One coarse interval while calls are pending, instead of a timer closure per call.
        st.timer = Some(set_interval(sweep, 250));
    }
}

fn stop_sweeper_if_idle(st: &mut ClientState) {
    if st.pending.is_empty() {
        if let Some(h) = st.timer.take() {
            clear_interval(&h);
        }
    }
}

fn sweep_timeouts(state: &Rc<RefCell<ClientState>>) {
    let t = now();
    let expired: Vec<Pending> = {
        let mut st = state.mutate();
        st.pump_due = false;
        let ids: Vec<u32> = st
            .pending
            .0
            .iter()
            .filter(|(_, p)| p.deadline <= t)
            .map(|(id, _)| *id)
            .collect();
        let out = ids.iter().filter_map(|id| st.pending.remove(id)).collect();
        stop_sweeper_if_idle(&mut st);
        out
    };
    let failed = pump(&mut state.mutate());
    reject_each(failed);
    for p in expired {
        let _ = p.reject.call1(&JsValue::NULL, &timeout_error(&p.op));
    }
}

fn on_client_message(state: &Rc<RefCell<ClientState>>, data: JsValue) {
    // A batch (the host's messages of one task) is read in order; calls waiting for a slot
    // go out once after it, together.
    let freed = if Array::is_array(&data) {
        let mut freed = false;
        for m in data.unchecked_into::<Array>().iter() {
            freed |= on_one_message(state, m);
        }
        freed
    } else {
        on_one_message(state, data)
    };
    if freed {
        let failed = pump(&mut state.mutate());
        reject_each(failed);
    }
}

/// Handles one host message; whether it gave an in-flight slot back.
fn on_one_message(state: &Rc<RefCell<ClientState>>, data: JsValue) -> bool {
    if !data.is_object() {
        return false;
    }
    // The init message (first on every port).
    // Strings are compared as JS values (`===`): copying them into Rust would cost the widget
    // bundle wasm-bindgen's string-passing glue.
    if field(&data, "type") == INIT_TYPE {
        let init = state.mutate().init.take();
        let version = field(&data, "version").as_f64();
        match init {
            Some((resolve, reject)) => {
                if version == Some(f64::from(PROTOCOL_VERSION)) {
                    // One cheap call tells the host a widget document is connected here (a
                    // hello sent before the host mounted it was lost), so a navigation this
                    // document makes later is not mistaken for the host loading the widget.
                    let mut st = state.mutate();
                    let id = st.next_id;
                    st.next_id = st.next_id.wrapping_add(1).max(1);
                    let _ = post_request(&st.port, id, &"config".into(), &JsValue::UNDEFINED);
                    drop(st);
                    let _ = resolve.call1(&JsValue::NULL, &data);
                } else {
                    close_state(state);
                    let _ = reject.call1(
                        &JsValue::NULL,
                        &code_error(
                            ErrorCode::UnsupportedProtocol,
                            "the host speaks another protocol version",
                        ),
                    );
                }
            }
            // A re-handshake's init: the config may have changed meanwhile.
            None => deliver_config(state, &field(&data, "config")),
        }
        return false;
    }
    let kind = field(&data, "event");
    if kind.is_string() {
        if kind == "config" {
            deliver_config(state, &field(&data, "config"));
            return false;
        }
        if kind == "closed" {
            // The host unmounted this widget: pending and later calls reject CLOSED (a new
            // mount's handshake reopens the client, see `replace_port`).
            close_state(state);
            state.mutate().reopenable = true;
            return false;
        }
        if kind == "queued" {
            // The host holds the write in its durable outbox: it is going to be sent however
            // long the backend stays away, so it must not be reported as failed (TIMEOUT)
            // while it waits. It settles with the server's answer, a rollback, or CLOSED.
            let id = field(&data, "id").as_f64().unwrap_or(-1.0) as u32;
            let queued = state.mutate().pending.get_mut(&id).map(|p| {
                p.deadline = f64::INFINITY;
                p.held = false; // the host gave its slot back
                p.queued.take()
            });
            if let Some(Some(f)) = &queued {
                let _ = f.call0(&JsValue::NULL);
            }
            return queued.is_some();
        }
        if kind == "progress" {
            let id = field(&data, "id").as_f64().unwrap_or(-1.0) as u32;
            let cb = {
                let mut st = state.mutate();
                st.pending.get_mut(&id).and_then(|p| {
                    p.deadline = now() + f64::from(p.idle_ms);
                    p.progress.clone()
                })
            };
            if let Some(cb) = cb {
                let _ = cb.call2(
                    &JsValue::NULL,
                    &field(&data, "loaded"),
                    &field(&data, "total"),
                );
            }
            return false;
        }
        let sub = field(&data, "subscription").as_f64().unwrap_or(-1.0) as u32;
        let cb = state.read().subs.get(&sub).map(|s| s.callback.clone());
        if let Some(cb) = cb {
            // A throwing widget callback must not break the port's message handler.
            let _ = cb.call1(&JsValue::NULL, &data);
        }
        return false;
    }
    let Some(id) = field(&data, "id").as_f64() else {
        return false;
    };
    // The sweeper interval stays until its next tick finds nothing pending: a widget making
    // one call after another does not set and clear an interval per call.
    let Some(p) = state.mutate().pending.remove(&(id as u32)) else {
        return false;
    };
    if field(&data, "ok").as_bool() == Some(true) {
        let _ = p.resolve.call1(&JsValue::NULL, &field(&data, "value"));
    } else {
        let _ = p
            .reject
            .call1(&JsValue::NULL, &wire_error(&field(&data, "error")));
    }
    true
}

fn deliver_config(state: &Rc<RefCell<ClientState>>, config: &JsValue) {
    let cb = state.read().on_config.clone();
    if let Some(cb) = cb {
        let _ = cb.call1(&JsValue::NULL, config);
    }
}
