//! `ctx.store`: the document facade, and the page's `update()` queue that runs updates one at
//! a time so each computes on top of the one before.

use super::{field, map_promise, report_subscribe_failure, send, unsubscriber, with_binding};
use crate::errors::{self, obj};
use crate::transport::{on_err, on_ok, then_raw, Client};
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `ctx.store`: one JSON document per bucket.
#[wasm_bindgen]
pub struct Store {
    pub(super) client: Client,
    pub(super) binding: JsValue,
    pub(super) updates: Updates,
}

/// The tail of the page's `update()` queue: a promise that resolves once the newest update's
/// write is queued on the host (or the update settled). Updates run one at a time, in call
/// order, each reading after the one before is queued, so each computes on top of the one
/// before instead of on the same value (which would lose one of them).
pub(super) type Updates = Rc<RefCell<JsValue>>;

#[wasm_bindgen]
impl Store {
    /// The document: the host's cached snapshot first (then it revalidates in the
    /// background). `namespace` picks an explicit bucket. Resolves `null` for a new bucket.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] namespace: Option<JsValue>,
    ) -> Promise {
        let args = obj(&[("namespace", &namespace.unwrap_or(JsValue::UNDEFINED))]);
        map_promise(
            send(&self.client, "store.get", with_binding(args, &self.binding)),
            |v| field(&v, "value"),
        )
    }

    /// Writes the document: subscribers see `optimistic` at once; resolves when the server
    /// confirmed (`confirmed` event). While offline it stays pending, however long that takes
    /// (the host keeps the write in its durable outbox and retries; it never rejects TIMEOUT
    /// once queued). A permanent failure (QUOTA_EXCEEDED, ...) rolls back (`rollback` event)
    /// and rejects with the code as `err.message`. `options` is a namespace, or
    /// `{namespace, ifVersion}`: with `ifVersion` the write applies only while the document
    /// is at that version, else it rejects CONFLICT with `err.data = {value, version}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<StoreWriteResult>")]
    pub fn set(
        &self,
        value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null | StoreSetOptions")]
        options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let (namespace, if_version) = if options.is_object() {
            (field(&options, "namespace"), field(&options, "ifVersion"))
        } else {
            (options, JsValue::UNDEFINED)
        };
        self.write(&value, &namespace, &if_version)
    }

    /// Read-modify-write without lost updates: calls `fn(current)` with the document and
    /// writes what it returns (a value or a promise of one) on the version it read. When
    /// another device or tab wrote first (CONFLICT), `fn` runs again on the server's value,
    /// up to 8 times, then the call rejects CONFLICT. Offline it applies locally at once
    /// (`optimistic`) and stays pending like `set`; when the write reaches a server that
    /// moved on meanwhile, `fn` re-runs on the server's value while this page is open (a
    /// write queued by a page that is gone rolls back instead, with a `rollback` event).
    #[wasm_bindgen(unchecked_return_type = "Promise<StoreWriteResult>")]
    pub fn update(
        &self,
        #[wasm_bindgen(js_name = "fn", unchecked_param_type = "(current: any) => unknown")]
        f: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] namespace: Option<JsValue>,
    ) -> Promise {
        let namespace = namespace.unwrap_or(JsValue::UNDEFINED);
        // Take a turn: `open` lets the next update of this page start.
        let mut open = JsValue::UNDEFINED;
        let turn = Promise::new(&mut |resolve, _| open = resolve.into());
        let before = Promise::resolve(&self.updates.replace(turn.into()));
        let store = self.clone_store();
        let next = open.clone();
        let result = on_ok(&before, move |_| {
            let args = obj(&[("namespace", &namespace)]);
            let read = send(
                &store.client,
                "store.get",
                with_binding(args, &store.binding),
            );
            Ok(update_attempt(store, f, namespace, read, UPDATE_ATTEMPTS, next).into())
        });
        // Settled either way (a failed read, a throwing `fn`, CONFLICT): the next one may go.
        let _ = then_raw(&result, &open, &open);
        result
    }

    /// Calls `cb(value, meta)` on every change of the bucket (`namespace`, or the bound
    /// bucket when `null`). Changes only: render the current value from `get()` first. A
    /// bound subscription follows config changes and re-links, and is handed the new bucket's
    /// value at once (`revalidated`). Callbacks may fire more than once per logical edit
    /// (optimistic, confirmed, revalidated). `onError` receives a failed subscription (e.g.
    /// NO_BINDING). Returns an unsubscribe function.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(value: any, meta: StoreMeta) => void")]
        cb: Function,
        #[wasm_bindgen(js_name = onError, unchecked_optional_param_type = "(err: MonoditError) => void")]
        on_error: Option<Function>,
    ) -> Function {
        let wrapper = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let _ = cb.call2(&JsValue::NULL, &field(&ev, "value"), &field(&ev, "meta"));
        });
        let args = obj(&[("namespace", &namespace)]);
        let _ = with_binding(args.clone(), &self.binding);
        let (id, answer) = self.client.subscribe(
            "store.subscribe",
            args,
            wrapper.into_js_value().unchecked_into(),
        );
        report_subscribe_failure(answer, on_error);
        unsubscriber(&self.client, id, "store.unsubscribe")
    }
}

/// How many times `ctx.store.update` runs its function before it gives up with CONFLICT.
const UPDATE_ATTEMPTS: u32 = 8;

impl Store {
    fn clone_store(&self) -> Store {
        Store {
            client: self.client.clone(),
            binding: self.binding.clone(),
            updates: self.updates.clone(),
        }
    }

    fn write(&self, value: &JsValue, namespace: &JsValue, if_version: &JsValue) -> Promise {
        let args = obj(&[
            ("value", value),
            ("namespace", namespace),
            ("ifVersion", if_version),
        ]);
        send(&self.client, "store.set", with_binding(args, &self.binding))
    }
}

/// One round of `update`: `read` gives `{value, version, head}` (a `store.get` answer or a
/// CONFLICT's data); `f`'s result is written on that version and read token (`head`: the
/// host admits it only while it still shows the value `f` saw); a CONFLICT starts the next
/// round on the value it carries. `queued` runs once a write is queued on the host.
fn update_attempt(
    store: Store,
    f: Function,
    namespace: JsValue,
    read: Promise,
    left: u32,
    queued: JsValue,
) -> Promise {
    on_ok(&read, move |snap| {
        let version = field(&snap, "version");
        let head = field(&snap, "head");
        let next = Promise::resolve(&f.call1(&JsValue::NULL, &field(&snap, "value"))?);
        Ok(on_ok(&next, move |next| {
            let args = obj(&[
                ("value", &next),
                ("namespace", &namespace),
                ("ifVersion", &version),
                ("ifHead", &head),
            ]);
            let args = with_binding(args, &store.binding);
            let written = match queued.dyn_ref::<Function>() {
                Some(q) => store.client.call_queued("store.set", args, q.clone()),
                None => send(&store.client, "store.set", args),
            };
            Ok(on_err(&written, move |err| {
                if left <= 1 || errors::code_of(&err).as_deref() != Some("CONFLICT") {
                    return Err(err);
                }
                let data = field(&err, "data");
                let current = if data.is_object() {
                    Promise::resolve(&data)
                } else {
                    // A host that sends no current document: read it again.
                    let args = obj(&[("namespace", &namespace)]);
                    send(
                        &store.client,
                        "store.get",
                        with_binding(args, &store.binding),
                    )
                };
                Ok(update_attempt(store, f, namespace, current, left - 1, queued).into())
            })
            .into())
        })
        .into())
    })
}
