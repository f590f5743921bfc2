//! One port, one widget document: the `Session` a handshake opens (its init message, its
//! call handler, its subscriptions) and closes.

use super::mount::Mount;
use super::to_js;
use crate::errors;
use crate::protocol::{self, Call, Request, INIT_TYPE, MAX_SUBSCRIPTIONS, PROTOCOL_VERSION};
use crate::sync::{AssetEvent, DocEvent, Engine, SubscriptionId};
use crate::transport::{self, Sender, Server};
use futures::FutureExt;
use js_sys::Array;
use monodit_core::api::{CollectionOp, InstanceKind};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;
use web_sys::MessagePort;

/// A widget subscription as the widget asked for it (re-resolved on config changes).
#[derive(Clone)]
pub(super) enum SubSpec {
    Store {
        namespace: Option<String>,
        binding: Option<String>,
    },
    Assets {
        namespace: Option<String>,
        binding: Option<String>,
    },
}

pub(super) struct WidgetSub {
    pub(super) id: f64,
    pub(super) spec: SubSpec,
    pub(super) bucket: String,
    pub(super) engine_id: SubscriptionId,
}

/// One port (one iframe document's connection).
pub(super) struct Session {
    pub(super) server: Server,
    pub(super) subs: RefCell<Vec<WidgetSub>>,
}

impl Mount {
    pub(super) fn open_session(self: &Rc<Self>, port: MessagePort) {
        self.close_session();
        let weak_mount = Rc::downgrade(self);
        let session = Rc::new_cyclic(|weak_session: &Weak<Session>| {
            let wm = weak_mount.clone();
            let ws = weak_session.clone();
            let handler: transport::Handler = Rc::new(move |req: Request, sender: Sender| {
                let (m, s) = (wm.upgrade(), ws.upgrade());
                async move {
                    let (Some(m), Some(s)) = (m, s) else {
                        return Err(Error::new(ErrorCode::Closed, "unmounted"));
                    };
                    m.doc_connected.set(true);
                    if m.check_detached() {
                        return Err(Error::new(ErrorCode::Closed, "the iframe was removed"));
                    }
                    if !writes(&req.call) {
                        // Reads are safe to run again (and their answers may be large), and
                        // subscriptions belong to this port: re-sent ones must run again.
                        return m.route(&s, req, sender).await;
                    }
                    let (id, op) = (req.id, std::mem::discriminant(&req.call));
                    let m2 = m.clone();
                    let port = sender.clone();
                    let run = async move { m2.route(&s, req, sender).await }.boxed_local();
                    m.calls.once(id, op, &port, run).await
                }
                .boxed_local()
            });
            let wm = weak_mount.clone();
            let on_dropped: transport::OnDropped = Rc::new(move |e: Error| {
                if let Some(m) = wm.upgrade() {
                    m.log_protocol_error(&e);
                }
            });
            Session {
                server: Server::new(port, handler, on_dropped),
                subs: RefCell::new(Vec::new()),
            }
        });
        let init = self.init_message();
        session.server.sender().post(&init);
        *self.session.borrow_mut() = Some(session);
        if let Some(h) = self.host.upgrade() {
            h.emit_simple("handshake", &self.instance_id);
        }
    }

    pub(super) fn init_message(&self) -> JsValue {
        let collections = Array::new();
        for name in self.manifest.collections.keys() {
            collections.push(&JsValue::from_str(name));
        }
        let bindings = Array::new();
        for b in &self.manifest.bindings {
            bindings.push(&errors::obj(&[
                ("key", &JsValue::from_str(&b.key)),
                ("backend", &JsValue::from_str(b.backend.as_str())),
            ]));
        }
        let kind = match self.kind {
            InstanceKind::Widget => "widget",
            InstanceKind::Theme => "theme",
        };
        errors::obj(&[
            ("type", &JsValue::from_str(INIT_TYPE)),
            ("version", &JsValue::from(PROTOCOL_VERSION)),
            ("instanceId", &JsValue::from_str(&self.instance_id)),
            ("kind", &JsValue::from_str(kind)),
            (
                "config",
                &to_js(&*self.config.borrow()).unwrap_or(JsValue::NULL),
            ),
            ("collections", &collections),
            ("bindings", &bindings),
        ])
        .into()
    }

    pub(super) fn close_session(&self) {
        let old = self.session.borrow_mut().take();
        if let Some(s) = old {
            s.server.close();
            if let Ok(engine) = self.engine() {
                for sub in s.subs.borrow_mut().drain(..) {
                    engine.unsubscribe(sub.engine_id);
                }
            }
        }
    }

    /// `unsubscribe`: whether the subscription existed on this port.
    pub(super) fn unsubscribe(
        &self,
        engine: &Engine,
        session: &Session,
        subscription: f64,
    ) -> JsValue {
        let removed: Vec<WidgetSub> = {
            let mut subs = session.subs.borrow_mut();
            let (gone, keep): (Vec<_>, Vec<_>) = subs.drain(..).partition(|s| s.id == subscription);
            *subs = keep;
            gone
        };
        for s in &removed {
            engine.unsubscribe(s.engine_id);
        }
        JsValue::from_bool(!removed.is_empty())
    }

    pub(super) async fn subscribe(
        self: &Rc<Self>,
        session: &Rc<Session>,
        id: f64,
        spec: SubSpec,
        sender: &Sender,
    ) -> Result<JsValue, Error> {
        let b = self.resolve_spec(&spec)?;
        match &spec {
            SubSpec::Store {
                namespace: Some(_), ..
            } => self.check_explicit(&b).await?,
            SubSpec::Assets {
                namespace: Some(_), ..
            } => self.check_explicit_assets(&b).await?,
            _ => {}
        }
        {
            let subs = session.subs.borrow();
            if subs.len() >= MAX_SUBSCRIPTIONS && !subs.iter().any(|s| s.id == id) {
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    format!("at most {MAX_SUBSCRIPTIONS} subscriptions per widget"),
                ));
            }
        }
        let engine = self.engine()?;
        let engine_id = subscribe_engine(&engine, &spec, &b.bucket_id, id, sender.clone());
        let old = {
            let mut subs = session.subs.borrow_mut();
            // Re-subscribing with a live id (widget re-handshake) replaces it.
            let old: Vec<SubscriptionId> = subs
                .iter()
                .filter(|s| s.id == id)
                .map(|s| s.engine_id)
                .collect();
            subs.retain(|s| s.id != id);
            subs.push(WidgetSub {
                id,
                spec: spec.clone(),
                bucket: b.bucket_id.clone(),
                engine_id,
            });
            old
        };
        for o in old {
            engine.unsubscribe(o);
        }
        let (backend, binding, namespace) = match &spec {
            SubSpec::Store { binding, namespace } => (Backend::D1Json, binding, namespace),
            SubSpec::Assets { binding, namespace } => (Backend::R2Assets, binding, namespace),
        };
        self.watch(&b.bucket_id, backend, binding.clone(), namespace.is_some());
        Ok(errors::obj(&[("bucket", &JsValue::from_str(&b.bucket_id))]).into())
    }
}

pub(super) fn subscribe_engine(
    engine: &Rc<Engine>,
    spec: &SubSpec,
    bucket: &str,
    id: f64,
    sender: Sender,
) -> SubscriptionId {
    match spec {
        SubSpec::Store { .. } => engine.doc_subscribe(
            bucket,
            Rc::new(move |ev: &DocEvent| {
                let value = to_js(&ev.value).unwrap_or(JsValue::NULL);
                let meta = errors::obj(&[
                    ("kind", &ev.kind.as_str().into()),
                    ("version", &JsValue::from_f64(ev.version as f64)),
                    ("pending", &JsValue::from_bool(ev.pending)),
                    ("bucket", &JsValue::from_str(&ev.bucket_id)),
                ]);
                sender.post(&protocol::event(
                    "store",
                    Some(id),
                    &[("value", value), ("meta", meta.into())],
                ));
            }),
        ),
        SubSpec::Assets { .. } => engine.assets_subscribe(
            bucket,
            Rc::new(move |ev: &AssetEvent| {
                let assets = to_js(&ev.assets).unwrap_or(JsValue::NULL);
                let meta = errors::obj(&[
                    ("kind", &"changed".into()),
                    ("version", &JsValue::from_f64(ev.version as f64)),
                    ("bucket", &JsValue::from_str(&ev.bucket_id)),
                ]);
                sender.post(&protocol::event(
                    "assets",
                    Some(id),
                    &[("assets", assets), ("meta", meta.into())],
                ));
            }),
        ),
    }
}

/// Whether a call changes stored data, so that running it twice is not the same as once.
pub(super) fn writes(call: &Call) -> bool {
    match call {
        Call::StoreSet { .. }
        | Call::AssetsUpload { .. }
        | Call::AssetsDelete { .. }
        | Call::KvSet { .. }
        | Call::KvDelete { .. } => true,
        Call::Storage { op, .. } => matches!(
            op,
            CollectionOp::Put { .. }
                | CollectionOp::Delete { .. }
                | CollectionOp::PutMany { .. }
                | CollectionOp::DeleteMany { .. }
        ),
        _ => false,
    }
}
