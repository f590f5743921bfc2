//! Document calls (`ctx.store.get`, `set`, `update`): resolved to their bucket, served by the
//! engine (memory, IndexedDB mirror, outbox), answered as a snapshot.

use super::mount::Mount;
use super::to_js;
use crate::errors;
use crate::sync::{Engine, WriteOptions};
use crate::transport::Sender;
use monodit_core::buckets::Backend;
use monodit_core::Error;
use serde::Serialize;
use serde_json::Value;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// A widget's bucket choice for a call: (explicit namespace, binding key).
pub(super) type Target = (Option<String>, Option<String>);

impl Mount {
    /// `ctx.store.get`: the snapshot with its read token (`head`).
    pub(super) async fn store_get(
        self: &Rc<Self>,
        engine: &Engine,
        namespace: Option<String>,
        binding: Option<String>,
    ) -> Result<JsValue, Error> {
        let b = self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())?;
        let view = engine.doc_get_js(&b).await?;
        self.watch(&b.bucket_id, Backend::D1Json, binding, namespace.is_some());
        let head = view.head.map_or(JsValue::NULL, JsValue::from_f64);
        Ok(errors::obj(&[
            ("value", &view.value),
            ("version", &JsValue::from_f64(view.version as f64)),
            ("pending", &JsValue::from_bool(view.pending)),
            ("bucket", &JsValue::from_str(&b.bucket_id)),
            ("head", &head),
        ])
        .into())
    }

    /// `ctx.store.set` / `update`: an optimistic write through the outbox.
    pub(super) async fn store_set(
        self: &Rc<Self>,
        engine: &Engine,
        id: f64,
        sender: Sender,
        value: Value,
        (namespace, binding): Target,
        opts: WriteOptions,
    ) -> Result<JsValue, Error> {
        let b = self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())?;
        if namespace.is_some() {
            self.check_explicit(&b).await?;
        }
        self.watch(&b.bucket_id, Backend::D1Json, binding, namespace.is_some());
        // Once the write is queued it is going to be sent, however long the server
        // stays away: the widget stops timing the call (see transport's "queued").
        // To the widget's current port, like upload progress: a re-sent copy of this
        // call (after a re-handshake) shares this run (see `CallLog`).
        let mount = Rc::downgrade(self);
        let queued = move || {
            let mount = mount.upgrade();
            if let Some(m) = &mount {
                m.calls.mark_queued(id);
            }
            let current = mount
                .and_then(|m| m.session.borrow().as_ref().map(|s| s.server.sender()))
                .unwrap_or(sender);
            current.queued(id);
        };
        let snap = engine.doc_write(&b, value, opts, queued).await?;
        snapshot_js(&snap.value, snap.version, snap.pending, &b.bucket_id)
    }
}

pub(super) fn snapshot_js(
    value: &impl Serialize,
    version: u64,
    pending: bool,
    bucket: &str,
) -> Result<JsValue, Error> {
    let v = to_js(value)?;
    Ok(errors::obj(&[
        ("value", &v),
        ("version", &JsValue::from_f64(version as f64)),
        ("pending", &JsValue::from_bool(pending)),
        ("bucket", &JsValue::from_str(bucket)),
    ])
    .into())
}
