//! Re-binding: a new config (`setConfig`), `host.relink` and a deleted bucket move a mount's
//! bindings; its subscriptions and event-log watchers follow them.

use super::mount::Mount;
use super::resolve::check_config;
use super::session::{subscribe_engine, SubSpec};
use super::to_js;
use crate::errors;
use crate::protocol;
use monodit_core::buckets::{self, Backend};
use monodit_core::{Error, ErrorCode};
use serde_json::{Map, Value};
use std::rc::Rc;
use wasm_bindgen::JsValue;

impl Mount {
    /// Registers a new config: every refusal of the backend (INCOMPATIBLE_BUCKET, ...) is the
    /// caller's error, so a config the widget could not use is never applied. Only when the
    /// backend is unreachable does the config apply unregistered (the contracts this browser
    /// knows were checked already, see [`Mount::check_known_contracts`]); the next config
    /// change, mount or plugin call registers again.
    pub(super) async fn register_config(&self) -> Result<(), Error> {
        match self.try_register().await {
            Err(e) if e.code.is_transient() => {
                web_sys::console::warn_1(
                    &format!(
                        "monodit-bridge: registering {} failed: {e}; the config applies offline",
                        self.instance_id
                    )
                    .into(),
                );
                Ok(())
            }
            other => other,
        }
    }

    pub(super) async fn set_config(
        self: &Rc<Self>,
        config: Map<String, Value>,
    ) -> Result<(), Error> {
        check_config(&self.manifest, &config, &self.instance_id)?;
        self.check_known_contracts(&config).await?;
        let previous = std::mem::replace(&mut *self.config.borrow_mut(), config);
        if let Err(e) = self.register_config().await {
            // The backend refused the config: keep serving the old one.
            *self.config.borrow_mut() = previous;
            return Err(e);
        }
        self.rebind();
        let config_js = to_js(&*self.config.borrow())?;
        if let Some(s) = self.session.borrow().as_ref() {
            s.server.sender().post(&protocol::event(
                "config",
                None,
                &[("config", config_js.clone())],
            ));
        }
        if let Some(h) = self.host.upgrade() {
            h.emit(
                &errors::obj(&[
                    ("type", &JsValue::from_str("config")),
                    ("instanceId", &JsValue::from_str(&self.instance_id)),
                    ("config", &config_js),
                ])
                .into(),
            );
        }
        Ok(())
    }

    /// Moves bound (non-explicit) subscriptions and the event-log watchers to the buckets the
    /// current config selects.
    pub(super) fn rebind(self: &Rc<Self>) {
        let Ok(engine) = self.engine() else { return };
        let session = self.session.borrow().clone();
        if let Some(session) = session {
            let sender = session.server.sender();
            let mut subs = session.subs.borrow_mut();
            for sub in subs.iter_mut() {
                if let SubSpec::Store {
                    namespace: Some(_), ..
                }
                | SubSpec::Assets {
                    namespace: Some(_), ..
                } = sub.spec
                {
                    continue; // an explicit namespace does not follow config
                }
                let Ok(b) = self.resolve_spec(&sub.spec) else {
                    continue;
                };
                if b.bucket_id == sub.bucket {
                    continue;
                }
                engine.unsubscribe(sub.engine_id);
                sub.engine_id =
                    subscribe_engine(&engine, &sub.spec, &b.bucket_id, sub.id, sender.clone());
                sub.bucket = b.bucket_id.clone();
                // The subscriber shows the old bucket: give it the new one's state now.
                let (engine, sub_id) = (engine.clone(), sub.engine_id);
                wasm_bindgen_futures::spawn_local(async move { engine.replay(&b, sub_id).await });
            }
        }
        self.rewatch();
    }

    pub(super) async fn relink(
        self: &Rc<Self>,
        binding_key: &str,
        bucket_id: &str,
    ) -> Result<Map<String, Value>, Error> {
        let binding = self.manifest.binding(binding_key).ok_or_else(|| {
            Error::new(
                ErrorCode::NoBinding,
                format!("the manifest declares no binding {binding_key:?}"),
            )
        })?;
        buckets::validate_bucket_id(bucket_id)?;
        let wanted = binding.contract();
        let existing = self.engine()?.api().buckets().await?;
        if let Some(found) = existing
            .iter()
            .find(|b| b.bucket_id == bucket_id && b.contract.backend == wanted.backend)
        {
            buckets::check_compatible(&found.contract, &wanted)?;
        }
        let key = buckets::config_key(&self.manifest, binding)?;
        let mut config = self.config.borrow().clone();
        config.insert(key, Value::String(bucket_id.to_owned()));
        self.set_config(config.clone()).await?;
        Ok(config)
    }

    /// After a bucket was deleted: config keys pointing at it are cleared so the widget falls
    /// back to its isolated bucket.
    pub(super) async fn disconnect_bucket(self: &Rc<Self>, backend: Backend, bucket_id: &str) {
        let mut config = self.config.borrow().clone();
        let mut changed = false;
        for b in self.manifest.bindings_for(backend) {
            let mut keys = Vec::new();
            if let Ok(k) = buckets::config_key(&self.manifest, b) {
                keys.push(k);
            }
            if backend == Backend::D1Json {
                keys.push(monodit_core::manifest::STORAGE_NAMESPACE_KEY.to_owned());
            }
            for k in keys {
                if config.get(&k).and_then(|v| v.as_str()) == Some(bucket_id) {
                    config.remove(&k);
                    changed = true;
                }
            }
        }
        if changed {
            if let Err(e) = self.set_config(config).await {
                web_sys::console::warn_1(
                    &format!("monodit-bridge: disconnecting {}: {e}", self.instance_id).into(),
                );
            }
        }
    }

    /// The `config` call: the instance id and its current config.
    pub(super) fn config_call(&self) -> Result<JsValue, Error> {
        let config = to_js(&*self.config.borrow())?;
        Ok(errors::obj(&[
            ("instanceId", &JsValue::from_str(&self.instance_id)),
            ("config", &config),
        ])
        .into())
    }
}
