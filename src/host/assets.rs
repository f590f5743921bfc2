//! Asset calls (`ctx.assets.upload`, `list`, `delete`): resolved to their asset bucket (an
//! explicit one checked once per mount), served by the engine and `uploads`.

use super::mount::Mount;
use super::store::Target;
use super::to_js;
use crate::protocol;
use crate::sync::Engine;
use crate::transport::Sender;
use monodit_core::Error;
use std::rc::Rc;
use wasm_bindgen::JsValue;

impl Mount {
    /// `ctx.assets.upload`, with progress events to the widget's current port.
    pub(super) async fn assets_upload(
        self: &Rc<Self>,
        engine: &Engine,
        id: f64,
        sender: Sender,
        file: web_sys::Blob,
        name: String,
        (namespace, binding): Target,
    ) -> Result<JsValue, Error> {
        let b = self.resolve_assets(&binding, &namespace).await?;
        // Progress goes to the widget's current port: after a re-handshake the upload
        // keeps running and the re-sent call shares its answer (see `CallLog`).
        let mount = Rc::downgrade(self);
        let first_sender = sender.clone();
        let progress: Rc<dyn Fn(f64, f64)> = Rc::new(move |loaded, total| {
            let current = mount
                .upgrade()
                .and_then(|m| m.session.borrow().as_ref().map(|s| s.server.sender()))
                .unwrap_or_else(|| first_sender.clone());
            current.post(&protocol::event(
                "progress",
                None,
                &[
                    ("id", JsValue::from_f64(id)),
                    ("loaded", JsValue::from_f64(loaded)),
                    ("total", JsValue::from_f64(total)),
                ],
            ));
        });
        let info = engine.assets_upload(&b, file, name, progress).await?;
        to_js(&info)
    }

    /// `ctx.assets.list`.
    pub(super) async fn assets_list(
        self: &Rc<Self>,
        engine: &Engine,
        binding: Option<String>,
        namespace: Option<String>,
    ) -> Result<JsValue, Error> {
        let b = self.resolve_assets(&binding, &namespace).await?;
        to_js(&engine.assets_list(&b).await?)
    }

    /// `ctx.assets.delete`.
    pub(super) async fn assets_delete(
        self: &Rc<Self>,
        engine: &Engine,
        object_key: String,
        binding: Option<String>,
        namespace: Option<String>,
    ) -> Result<JsValue, Error> {
        let b = self.resolve_assets(&binding, &namespace).await?;
        engine.assets_delete(&b, &object_key).await?;
        Ok(JsValue::TRUE)
    }
}
