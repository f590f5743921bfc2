//! The host's end of one widget's port ([`Server`]): decoding, error replies, the in-flight
//! cap and flood limits, at-most-once calls across re-handshakes ([`CallLog`]), and the host
//! side of the window handshake ([`handshake`]).

use super::{field, now};
use crate::errors;
use crate::protocol::*;
use futures::future::{FutureExt, LocalBoxFuture};
use js_sys::Array;
use monodit_core::slots::{CallSlots, Refusal};
use monodit_core::{Error, ErrorCode};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

/// Posts to one widget's port until it is closed (then silently drops).
///
/// Once the widget has sent a batch (an array of requests, see [`crate::protocol`]), the
/// messages posted to it in one task go out as one array at the end of that task: a burst of
/// writes then costs the two pages a few `postMessage`s instead of three per write. A port
/// that never sent an array gets every message on its own.
#[derive(Clone)]
pub struct Sender {
    port: MessagePort,
    closed: Rc<Cell<bool>>,
    slots: Rc<RefCell<CallSlots>>,
    out: Rc<Outgoing>,
}

/// Messages waiting for the end of the task, each with the id of the call it answers.
#[derive(Default)]
struct Outgoing {
    /// The widget sends batches, so it reads them.
    batches: Cell<bool>,
    /// A batch from the widget is being read: the flush waits until all its calls started.
    reading: Cell<bool>,
    /// A flush is spawned.
    scheduled: Cell<bool>,
    queue: RefCell<Vec<(JsValue, Option<RequestId>)>>,
}

impl Sender {
    /// Posts a message (to the end of the task's batch when the widget sends batches); one
    /// that cannot be cloned is dropped, never thrown (see [`Sender::flush`]).
    pub fn post(&self, msg: &JsValue) {
        self.enqueue(msg.clone(), None);
    }

    fn enqueue(&self, msg: JsValue, answers: Option<RequestId>) {
        if self.closed.get() {
            return;
        }
        if !self.out.batches.get() {
            return self.post_one(&msg, answers);
        }
        self.out.queue.borrow_mut().push((msg, answers));
        if !self.out.reading.get() {
            self.schedule_flush();
        }
    }

    /// Flushes after the futures already spawned: the calls of a batch run there, and
    /// whatever they say at once joins the same array.
    fn schedule_flush(&self) {
        if self.out.queue.borrow().is_empty() || self.out.scheduled.replace(true) {
            return;
        }
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move { me.flush() });
    }

    /// Posts what this task queued: one array, or (when a value in it cannot be cloned) each
    /// message alone, so only the call whose answer cannot cross learns it (INTERNAL).
    fn flush(&self) {
        self.out.scheduled.set(false);
        let queue = std::mem::take(&mut *self.out.queue.borrow_mut());
        if queue.is_empty() || self.closed.get() {
            return;
        }
        if queue.len() > 1 {
            let all: Array = queue.iter().map(|(m, _)| m.clone()).collect();
            if self.port.post_message(&all).is_ok() {
                return;
            }
        }
        for (msg, answers) in &queue {
            self.post_one(msg, *answers);
        }
    }

    fn post_one(&self, msg: &JsValue, answers: Option<RequestId>) {
        if self.port.post_message(msg).is_ok() {
            return;
        }
        if let Some(id) = answers {
            let e = Error::new(
                ErrorCode::Internal,
                "the host's answer could not be sent across the port",
            );
            let _ = self.port.post_message(&error_reply(id, &e));
        }
    }

    /// Tells the widget its write `id` is queued (it stops timing the call) and gives the
    /// call's in-flight slot back: a queued write costs the host no work until it settles.
    pub fn queued(&self, id: RequestId) {
        self.post(&event("queued", None, &[("id", JsValue::from_f64(id))]));
        self.slots.borrow_mut().queued(id);
    }

    /// Whether the port was closed (unmount, re-handshake).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn close_port(&self) {
        // What this task already said goes first (a `closed` event, last answers).
        self.flush();
        self.closed.set(true);
        self.port.set_onmessage(None);
        self.port.close();
    }

    fn reply(&self, id: RequestId, result: Result<JsValue, Error>) {
        let msg = match &result {
            Ok(v) => ok_reply(id, v),
            Err(e) => error_reply(id, e),
        };
        self.enqueue(msg, Some(id));
    }
}

/// The router the server hands every valid request to.
pub type Handler = Rc<dyn Fn(Request, Sender) -> LocalBoxFuture<'static, Result<JsValue, Error>>>;
/// Told about messages that were dropped because they had no usable id.
pub type OnDropped = Rc<dyn Fn(Error)>;

/// How long a finished call's answer is kept for a re-sent copy of it (ms).
pub const CALL_REPLAY_MS: f64 = 60_000.0;
/// Most finished calls kept per mount; the oldest go first.
pub const CALL_REPLAY_MAX: usize = 256;

type SharedAnswer = futures::future::Shared<LocalBoxFuture<'static, Result<JsValue, Error>>>;

/// At-most-once execution of a widget's calls across re-handshakes.
///
/// When the host re-handshakes (iframe `load`, widget hello), the widget re-sends every
/// call it has no answer for on the new port, with the same id. The host may already be
/// running it, or have finished it and lost the answer with the old port; running it again
/// would upload a file twice. Ids start at a random point per widget document, so a new
/// document's ids do not meet its predecessor's.
#[derive(Default)]
pub struct CallLog {
    calls: RefCell<Vec<LoggedCall>>,
}

struct LoggedCall {
    id: RequestId,
    op: std::mem::Discriminant<Call>,
    answer: SharedAnswer,
    done_at: Rc<Cell<Option<f64>>>,
    /// Its write was reported queued (a re-sent copy is told so at once, see `once`).
    queued: Rc<Cell<bool>>,
}

impl CallLog {
    /// Runs `run` unless a call with this id and op (`std::mem::discriminant` of its
    /// [`Call`]) is running or finished recently, in which case its answer is shared. A
    /// re-sent copy of a write already queued is reported queued on `sender` at once, so it
    /// holds no in-flight slot of the new port (and the widget stops timing it).
    pub async fn once(
        &self,
        id: RequestId,
        op: std::mem::Discriminant<Call>,
        sender: &Sender,
        run: LocalBoxFuture<'static, Result<JsValue, Error>>,
    ) -> Result<JsValue, Error> {
        let found = self
            .calls
            .borrow()
            .iter()
            .find(|c| c.id == id && c.op == op)
            .map(|c| (c.answer.clone(), c.queued.get()));
        if let Some((answer, queued)) = found {
            drop(run);
            if queued {
                sender.queued(id);
            }
            return answer.await;
        }
        self.prune();
        let answer = run.shared();
        let done_at = Rc::new(Cell::new(None));
        self.calls.borrow_mut().push(LoggedCall {
            id,
            op,
            answer: answer.clone(),
            done_at: done_at.clone(),
            queued: Rc::new(Cell::new(false)),
        });
        let out = answer.await;
        done_at.set(Some(now()));
        out
    }

    /// Records that running call `id`'s write is queued (see [`CallLog::once`]).
    pub fn mark_queued(&self, id: RequestId) {
        for c in self.calls.borrow().iter().filter(|c| c.id == id) {
            c.queued.set(true);
        }
    }

    /// Forgets every call (teardown: nothing can be re-sent any more).
    pub fn clear(&self) {
        self.calls.borrow_mut().clear();
    }

    fn prune(&self) {
        let t = now();
        let mut calls = self.calls.borrow_mut();
        calls.retain(|c| c.done_at.get().is_none_or(|d| t - d < CALL_REPLAY_MS));
        let finished = calls.iter().filter(|c| c.done_at.get().is_some()).count();
        let mut excess = finished.saturating_sub(CALL_REPLAY_MAX);
        // Oldest first: entries are in arrival order.
        calls.retain(|c| {
            if excess > 0 && c.done_at.get().is_some() {
                excess -= 1;
                return false;
            }
            true
        });
    }
}

/// The host's end of one widget's port.
pub struct Server {
    sender: Sender,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Server {
    /// Starts serving `port`: every message is decoded and validated; malformed ones get
    /// an error reply (or are dropped, reported to `on_dropped`, when there is no id).
    pub fn new(port: MessagePort, handler: Handler, on_dropped: OnDropped) -> Server {
        let sender = Sender {
            port: port.clone(),
            closed: Rc::new(Cell::new(false)),
            slots: Rc::new(RefCell::new(CallSlots::new(
                MAX_IN_FLIGHT,
                MAX_QUEUED_WRITES,
            ))),
            out: Rc::default(),
        };
        // Refused messages (malformed, over the in-flight cap, dropped log lines) in the
        // current second. Well-behaved traffic, however fast, is never refused, so only a
        // flood counts here: past MAX_REFUSED_PER_SECOND the port's requests get a
        // RATE_LIMITED reply without being decoded, past four times that it is closed.
        let refused = Rc::new(Cell::new((0.0f64, 0u32)));
        let strike = |refused: &Cell<(f64, u32)>| -> u32 {
            let (start, n) = refused.get();
            let t = now();
            let (start, n) = if t - start >= 1_000.0 {
                (t, 1)
            } else {
                (start, n + 1)
            };
            refused.set((start, n));
            n
        };
        let s = sender.clone();
        // One request (a message, or one entry of a batch).
        let one = move |data: JsValue| {
            if s.is_closed() {
                return;
            }
            let (start, n) = refused.get();
            let flooding = n >= MAX_REFUSED_PER_SECOND && now() - start < 1_000.0;
            // While flooding, what would be refused anyway (a log line, a call past the
            // in-flight cap, garbage) is answered from its id alone; other calls go on.
            if flooding
                && (s.slots.borrow().in_flight() >= MAX_IN_FLIGHT
                    || !matches!(field(&data, "op").as_string().as_deref(), Some(op) if op != "log"))
            {
                if strike(&refused) > 4 * MAX_REFUSED_PER_SECOND {
                    s.post(&crate::protocol::event("closed", None, &[]));
                    s.close_port();
                    return on_dropped(Error::new(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {} refused messages in one second: the port was closed",
                            4 * MAX_REFUSED_PER_SECOND
                        ),
                    ));
                }
                if let Some(id) = field(&data, "id").as_f64() {
                    let e = Error::new(
                        ErrorCode::RateLimited,
                        "this widget is flooding its port; retry later",
                    );
                    s.reply(id, Err(e));
                }
                return;
            }
            let req = match parse_request(&data) {
                Ok(r) => r,
                Err((id, e)) => {
                    strike(&refused);
                    return match id {
                        Some(id) => s.reply(id, Err(e)),
                        None => on_dropped(e),
                    };
                }
            };
            let admitted = s.slots.borrow_mut().admit(req.id);
            if let Err(why) = admitted {
                strike(&refused);
                let e = match why {
                    Refusal::InFlight => Error::new(
                        ErrorCode::RateLimited,
                        format!("more than {MAX_IN_FLIGHT} calls in flight on this port"),
                    ),
                    Refusal::Queued => Error::new(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {MAX_QUEUED_WRITES} writes queued on this port; \
                             retry once some have settled"
                        ),
                    ),
                    Refusal::Duplicate => Error::new(
                        ErrorCode::InvalidArgument,
                        "a call with this id is already running on this port",
                    ),
                };
                return s.reply(req.id, Err(e));
            }
            let id = req.id;
            let fut = handler(req, s.clone());
            let (s2, refused) = (s.clone(), refused.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = fut.await;
                s2.slots.borrow_mut().finish(id);
                if matches!(&result, Err(e) if e.code == ErrorCode::RateLimited) {
                    strike(&refused);
                }
                s2.reply(id, result);
            });
        };
        let s = sender.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            if !Array::is_array(&data) {
                return one(data);
            }
            // A batch: each entry is handled as if it came alone (decoding, slots, flood
            // limits), in order, and the answers go back as batches too.
            s.out.batches.set(true);
            s.out.reading.set(true);
            for item in data.unchecked_into::<Array>().iter() {
                if s.is_closed() {
                    break;
                }
                one(item);
            }
            s.out.reading.set(false);
            s.schedule_flush();
        });
        port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        port.start();
        Server {
            sender,
            _on_message: on_message,
        }
    }

    /// A sender for events on this port.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Closes the port: no more requests are read, late answers are dropped.
    pub fn close(&self) {
        self.sender.close_port();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}

/// Host side of the window handshake: a fresh channel for one iframe document; port2 is
/// posted to `target` with targetOrigin `"*"` (a sandboxed iframe's origin is `"null"`,
/// and the message carries nothing but the port). Returns port1.
pub fn handshake(target: &web_sys::Window) -> Result<MessagePort, Error> {
    let channel = web_sys::MessageChannel::new().map_err(|e| errors::from_js(&e))?;
    let port2 = channel.port2();
    let msg = errors::obj(&[
        ("type", &JsValue::from_str(HANDSHAKE_TYPE)),
        ("version", &JsValue::from(PROTOCOL_VERSION)),
        ("port", &port2),
    ]);
    target
        .post_message_with_transfer(&msg, "*", &Array::of1(&port2))
        .map_err(|e| errors::from_js(&e))?;
    Ok(channel.port1())
}
