//! The host's event log (`host.onEvent`): the fan-out to listeners, the watchers that put a
//! mounted instance's bucket events in it, protocol errors, and `ctx.log` lines.

use super::mount::{Mount, LOG_BURST, LOG_WINDOW_MS};
use super::{to_js, HostInner};
use crate::errors;
use crate::protocol;
use crate::sync::{AssetEvent, DocEvent, SubscriptionId};
use js_sys::{Array, Function};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use serde_json::Value;
use std::collections::HashSet;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// An event-log watcher: (bucket, backend, binding key (`None`: explicit namespace), engine
/// subscription).
pub(super) type Watcher = (String, Backend, Option<String>, SubscriptionId);

impl HostInner {
    pub(super) fn emit(&self, ev: &JsValue) {
        let ls: Vec<Function> = self
            .listeners
            .borrow()
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        for f in ls {
            // A throwing log listener must not break routing.
            let _ = f.call1(&JsValue::NULL, ev);
        }
    }

    pub(super) fn emit_simple(&self, kind: &str, instance_id: &str) {
        self.emit(
            &errors::obj(&[
                ("type", &JsValue::from_str(kind)),
                ("instanceId", &JsValue::from_str(instance_id)),
            ])
            .into(),
        );
    }
}

impl Mount {
    pub(super) fn log_protocol_error(&self, e: &Error) {
        if let Some(h) = self.host.upgrade() {
            h.emit(
                &errors::obj(&[
                    ("type", &JsValue::from_str("protocolError")),
                    ("instanceId", &JsValue::from_str(&self.instance_id)),
                    ("code", &JsValue::from_str(e.code.as_str())),
                    ("message", &JsValue::from_str(&e.message)),
                ])
                .into(),
            );
        }
    }

    /// `ctx.log`: one entry in the host's event log (`type: "log"`) and the page console,
    /// labelled with the instance, at most [`LOG_BURST`] per [`LOG_WINDOW_MS`] per mount so a
    /// runaway widget cannot flood the host page (the excess is counted and reported once).
    /// Returns whether the line was kept.
    pub(super) fn log(
        &self,
        level: protocol::LogLevel,
        message: &str,
        data: Option<&Value>,
    ) -> bool {
        let now = js_sys::Date::now();
        {
            let mut w = self.log_window.borrow_mut();
            let dropped = w.roll(now);
            if dropped > 0 {
                web_sys::console::warn_1(
                    &format!(
                        "[{}] monodit-bridge: {dropped} log entries dropped (more than {LOG_BURST} in {} ms)",
                        self.instance_id,
                        // As an integer: formatting an f64 keeps core's float formatting in the host.
                        LOG_WINDOW_MS as u64
                    )
                    .into(),
                );
            }
            if !w.admit(now) {
                return false;
            }
        }
        let data_js = data
            .map(|d| to_js(d).unwrap_or(JsValue::NULL))
            .unwrap_or(JsValue::UNDEFINED);
        let line = JsValue::from_str(&format!("[{}] {message}", self.instance_id));
        let args = if data.is_some() {
            Array::of2(&line, &data_js)
        } else {
            Array::of1(&line)
        };
        match level {
            protocol::LogLevel::Debug => web_sys::console::debug(&args),
            protocol::LogLevel::Info => web_sys::console::info(&args),
            protocol::LogLevel::Warn => web_sys::console::warn(&args),
            protocol::LogLevel::Error => web_sys::console::error(&args),
        }
        if let Some(h) = self.host.upgrade() {
            h.emit(
                &errors::obj(&[
                    ("type", &JsValue::from_str("log")),
                    ("level", &JsValue::from_str(level.as_str())),
                    ("instanceId", &JsValue::from_str(&self.instance_id)),
                    ("message", &JsValue::from_str(message)),
                    ("data", &data_js),
                ])
                .into(),
            );
        }
        true
    }

    /// The `ctx.log` call: RATE_LIMITED when the line was dropped.
    pub(super) fn log_call(
        &self,
        level: protocol::LogLevel,
        message: &str,
        data: Option<&Value>,
    ) -> Result<JsValue, Error> {
        if self.log(level, message, data) {
            Ok(JsValue::TRUE)
        } else {
            // The widget ignores it (`ctx.log` never throws); the port counts it.
            Err(Error::new(ErrorCode::RateLimited, "log line dropped"))
        }
    }

    /// Watches a bucket this instance uses so the host's event log sees its events. A bucket
    /// reached through an explicit namespace is recorded without a binding key: it stays
    /// watched whatever the config, while bound buckets follow it (see [`Mount::rewatch`]).
    pub(super) fn watch(
        self: &Rc<Self>,
        bucket: &str,
        backend: Backend,
        binding: Option<String>,
        explicit: bool,
    ) {
        if self.torn_down.get()
            || self
                .watchers
                .borrow()
                .iter()
                .any(|(b, be, _, _)| b == bucket && *be == backend)
        {
            return;
        }
        let Ok(engine) = self.engine() else { return };
        let (host, instance) = (self.host.clone(), self.instance_id.clone());
        let key = binding
            .clone()
            .or_else(|| self.manifest.binding_for(backend).map(|b| b.key.clone()));
        let key_js = key
            .as_deref()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL);
        let id = match backend {
            Backend::D1Json => engine.doc_subscribe(
                bucket,
                Rc::new(move |ev: &DocEvent| {
                    let Some(h) = host.upgrade() else { return };
                    h.emit(
                        &errors::obj(&[
                            ("type", &"store".into()),
                            ("kind", &ev.kind.as_str().into()),
                            ("instanceId", &JsValue::from_str(&instance)),
                            ("binding", &key_js),
                            ("bucket", &JsValue::from_str(&ev.bucket_id)),
                            ("version", &JsValue::from_f64(ev.version as f64)),
                            ("pending", &JsValue::from_bool(ev.pending)),
                        ])
                        .into(),
                    );
                }),
            ),
            Backend::R2Assets => engine.assets_subscribe(
                bucket,
                Rc::new(move |ev: &AssetEvent| {
                    let Some(h) = host.upgrade() else { return };
                    h.emit(
                        &errors::obj(&[
                            ("type", &"assets".into()),
                            ("instanceId", &JsValue::from_str(&instance)),
                            ("binding", &key_js),
                            ("bucket", &JsValue::from_str(&ev.bucket_id)),
                            ("version", &JsValue::from_f64(ev.version as f64)),
                            ("count", &JsValue::from_f64(ev.assets.len() as f64)),
                        ])
                        .into(),
                    );
                }),
            ),
        };
        let bound_key = if explicit { None } else { key };
        self.watchers
            .borrow_mut()
            .push((bucket.to_owned(), backend, bound_key, id));
    }

    /// Watches every document binding's current bucket, and the asset bindings the widget
    /// has used (dropping watchers of buckets no longer bound; explicit-namespace buckets stay
    /// watched once used).
    ///
    /// Asset bindings are watched lazily: a watched bucket is re-checked on every focus and
    /// visibility change, and a widget that never touches `ctx.assets` should not cost its
    /// asset list a place in that request.
    pub(super) fn rewatch(self: &Rc<Self>) {
        let Ok(engine) = self.engine() else { return };
        let used_assets: HashSet<String> = self
            .watchers
            .borrow()
            .iter()
            .filter(|(_, be, _, _)| *be == Backend::R2Assets)
            .filter_map(|(_, _, key, _)| key.clone())
            .collect();
        let bound: Vec<(String, Backend, String)> = self
            .manifest
            .bindings
            .iter()
            .filter(|b| b.backend == Backend::D1Json || used_assets.contains(&b.key))
            .filter_map(|b| {
                self.resolve(b.backend, Some(&b.key), None)
                    .ok()
                    .map(|r| (r.bucket_id, b.backend, b.key.clone()))
            })
            .collect();
        let stale: Vec<SubscriptionId> = {
            let mut w = self.watchers.borrow_mut();
            let (gone, keep): (Vec<_>, Vec<_>) = w.drain(..).partition(|(bucket, be, key, _)| {
                key.is_some() && !bound.iter().any(|(b, bb, _)| b == bucket && bb == be)
            });
            *w = keep;
            gone.into_iter().map(|(_, _, _, id)| id).collect()
        };
        for id in stale {
            engine.unsubscribe(id);
        }
        for (bucket, backend, key) in bound {
            if backend == Backend::D1Json {
                // The widget will most likely read it first thing.
                engine.warm(&bucket);
            }
            self.watch(&bucket, backend, Some(key), false);
        }
    }
}
