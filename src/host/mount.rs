//! The mount lifecycle: `Mount` (one instance on one iframe or port) from `host.mount` to
//! teardown, its registration with the backend, and `MountHandle`, what `host.mount`
//! resolves with.

use super::events::Watcher;
use super::navigation::{iframe_source, MAX_HELLOS_PER_SECOND};
use super::resolve::check_config;
use super::session::Session;
use super::{config_of, field, js_err, json_of, to_js, HostInner, Observer};
use crate::protocol;
use crate::sync::Engine;
use crate::transport;
use js_sys::{Object, Promise};
use monodit_core::api::{InstanceKind, InstanceRegistration};
use monodit_core::buckets;
use monodit_core::manifest::Manifest;
use monodit_core::plugins;
use monodit_core::rate::RateWindow;
use monodit_core::{Error, ErrorCode};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlIFrameElement;

/// What `host.mount` resolves with.
#[wasm_bindgen]
pub struct MountHandle {
    pub(super) mount: Rc<Mount>,
}

#[wasm_bindgen]
impl MountHandle {
    /// The instance id.
    #[wasm_bindgen(getter, js_name = instanceId)]
    pub fn instance_id(&self) -> String {
        self.mount.instance_id.clone()
    }

    /// The current config.
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, unknown>")]
    pub fn config(&self) -> JsValue {
        to_js(&*self.mount.config.borrow()).unwrap_or(JsValue::UNDEFINED)
    }

    /// Replaces the WHOLE config (keys left out are removed: to re-link one binding pass the
    /// current config with that key changed, or use `host.relink`): re-registers the
    /// instance, re-binds the widget's subscriptions to the buckets the new config selects,
    /// then tells the widget (`onConfigChange`). Rejects, keeping the old config and binding,
    /// when the backend refuses it (INCOMPATIBLE_BUCKET for a bucket of another contract,
    /// also offline for buckets this browser knows, INVALID_ARGUMENT, ...).
    #[wasm_bindgen(js_name = setConfig, unchecked_return_type = "Promise<void>")]
    pub fn set_config(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] config: JsValue,
    ) -> Promise {
        let mount = self.mount.clone();
        super::promise(async move {
            if mount.check_detached() {
                return Err(js_err(Error::new(
                    ErrorCode::Closed,
                    "this mount was unmounted; mount the widget again",
                )));
            }
            let config = config_of(&config).map_err(js_err)?;
            mount.set_config(config).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Closes the port, drops every subscription, and stops listening to the iframe.
    pub fn unmount(&self) {
        self.mount.teardown();
    }
}

pub(super) struct Mount {
    pub(super) host: Weak<HostInner>,
    pub(super) instance_id: String,
    pub(super) kind: InstanceKind,
    pub(super) manifest: Manifest,
    pub(super) manifest_json: Value,
    pub(super) config: RefCell<Map<String, Value>>,
    pub(super) iframe: Option<HtmlIFrameElement>,
    pub(super) on_load: RefCell<Option<Closure<dyn FnMut()>>>,
    pub(super) session: RefCell<Option<Rc<Session>>>,
    /// Event-log watchers: (bucket, backend, binding key, engine subscription).
    pub(super) watchers: RefCell<Vec<Watcher>>,
    pub(super) torn_down: Cell<bool>,
    /// Explicit asset buckets already found new or compatible.
    pub(super) checked_assets: RefCell<std::collections::BTreeSet<String>>,
    /// Calls run once across re-handshakes (a re-sent upload must not upload twice).
    pub(super) calls: transport::CallLog,
    /// `ctx.log` rate window: [`LOG_BURST`] lines per [`LOG_WINDOW_MS`].
    pub(super) log_window: RefCell<RateWindow>,
    /// Where the widget's code comes from (core `plugins`), when known: the mount's `source`
    /// option, else the iframe's URL at its last host-initiated load.
    pub(super) source: RefCell<Option<String>>,
    /// Whether `source` came from the mount options (then the iframe URL is not consulted).
    pub(super) explicit_source: bool,
    /// Whether the backend accepted the registration with the current source, so the
    /// plugin id is this widget's.
    pub(super) registered: Cell<bool>,
    /// The host page changed the iframe's `src`/`srcdoc` since its last `load`.
    pub(super) host_navigated: Cell<bool>,
    /// A widget document in the iframe has connected (hello or a call) since its last `load`.
    pub(super) doc_connected: Cell<bool>,
    /// The widget navigated away by itself: no port until the host sets `src` again.
    pub(super) suspended: Cell<bool>,
    /// Watches the iframe's `src`/`srcdoc` (host-initiated navigations).
    pub(super) src_observer: RefCell<Option<Observer>>,
    /// Hello rate window: [`MAX_HELLOS_PER_SECOND`] per second.
    pub(super) hello_window: RefCell<RateWindow>,
}

/// Most `ctx.log` entries one mount may write per [`LOG_WINDOW_MS`].
pub const LOG_BURST: u32 = 100;
/// The `ctx.log` rate window (ms).
pub const LOG_WINDOW_MS: f64 = 1_000.0;

impl Mount {
    pub(super) async fn create(
        inner: &Rc<HostInner>,
        iframe: Option<HtmlIFrameElement>,
        options: &JsValue,
    ) -> Result<Rc<Mount>, Error> {
        let instance_id = field(options, "instanceId")
            .as_string()
            .ok_or_else(|| Error::invalid("instanceId is required"))?;
        buckets::validate_instance_id(&instance_id)?;
        let kind = match field(options, "kind").as_string().as_deref() {
            None | Some("widget") => InstanceKind::Widget,
            Some("theme") => InstanceKind::Theme,
            Some(k) => {
                return Err(Error::invalid(format!(
                    "kind must be \"widget\" or \"theme\", not {k:?}"
                )))
            }
        };
        let manifest_json = json_of(&field(options, "manifest"), "manifest").map_err(|e| {
            Error::new(ErrorCode::InvalidManifest, e.message.clone())
                .with_detail(serde_json::json!([{ "path": "$", "message": e.message }]))
        })?;
        let manifest = Manifest::parse(&manifest_json)?;
        // Themes may use store/assets without declaring bindings (README): they get typed
        // implicit ones, so they still cannot write into a widget's bucket.
        let manifest = match kind {
            InstanceKind::Theme => buckets::with_theme_bindings(&manifest),
            InstanceKind::Widget => manifest,
        };
        let config = config_of(&field(options, "config"))?;
        check_config(&manifest, &config, &instance_id)?;
        let explicit_source = field(options, "source").is_string();
        let source = match field(options, "source").as_string() {
            Some(s) => Some(s),
            None if !field(options, "source").is_undefined() => {
                return Err(Error::invalid("source must be a string"))
            }
            None => iframe.as_ref().and_then(iframe_source),
        };
        if let Some(s) = &source {
            plugins::validate_source(s)?;
        }
        inner.mounts.borrow_mut().retain(|m| !m.detached());
        if inner.find(&instance_id).is_some() {
            return Err(Error::invalid(format!(
                "instance {instance_id:?} is already mounted; unmount it first"
            )));
        }
        if let Some(f) = &iframe {
            let same = |m: &Rc<Mount>| m.iframe.as_ref().is_some_and(|g| Object::is(f, g));
            if let Some(other) = inner.mounts.borrow().iter().find(|m| same(m)) {
                return Err(Error::invalid(format!(
                    "this iframe is already mounted as instance {:?}; unmount it first",
                    other.instance_id
                )));
            }
        }
        let mount = Rc::new(Mount {
            host: Rc::downgrade(inner),
            instance_id,
            kind,
            manifest,
            manifest_json,
            config: RefCell::new(config),
            iframe,
            on_load: RefCell::new(None),
            session: RefCell::new(None),
            watchers: RefCell::new(Vec::new()),
            calls: transport::CallLog::default(),
            log_window: RefCell::new(RateWindow::new(LOG_BURST, LOG_WINDOW_MS)),
            explicit_source,
            source: RefCell::new(source),
            registered: Cell::new(false),
            host_navigated: Cell::new(false),
            doc_connected: Cell::new(false),
            suspended: Cell::new(false),
            src_observer: RefCell::new(None),
            hello_window: RefCell::new(RateWindow::new(MAX_HELLOS_PER_SECOND, 1_000.0)),
            torn_down: Cell::new(false),
            checked_assets: RefCell::new(Default::default()),
        });
        // An iframe whose URL is not set yet registers at its first load, once its source is
        // known: registering without one now could not claim the plugin id anyway.
        let defer = mount.iframe.is_some() && mount.source.borrow().is_none();
        if !defer {
            mount.register().await?;
        }
        inner.mounts.borrow_mut().push(mount.clone());
        mount.rewatch();
        inner.emit_simple("mount", &mount.instance_id);
        Ok(mount)
    }

    pub(super) fn engine(&self) -> Result<Rc<Engine>, Error> {
        self.host
            .upgrade()
            .map(|h| h.engine.clone())
            .ok_or_else(|| Error::new(ErrorCode::Closed, "the host was closed"))
    }

    /// Registers (or re-registers) the instance so topology knows its buckets. Offline or
    /// on a transient failure the mount still works from the mirror; the next config change
    /// or mount registers again, and so does the first plugin call ([`Mount::plugin_id`]).
    pub(super) async fn register(&self) -> Result<(), Error> {
        match self.try_register().await {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::InvalidManifest
                        | ErrorCode::InvalidArgument
                        | ErrorCode::PluginIdTaken
                        // The server's per-user bounds (core `limits`): retrying cannot help.
                        | ErrorCode::LimitExceeded
                        | ErrorCode::PayloadTooLarge
                ) =>
            {
                Err(e)
            }
            Err(e) => {
                web_sys::console::warn_1(
                    &format!(
                        "monodit-bridge: registering {} failed: {e}",
                        self.instance_id
                    )
                    .into(),
                );
                Ok(())
            }
        }
    }

    pub(super) async fn try_register(&self) -> Result<(), Error> {
        let reg = InstanceRegistration {
            kind: self.kind,
            manifest: self.manifest_json.clone(),
            config: self.config.borrow().clone(),
            source: self.source.borrow().clone(),
        };
        self.engine()?
            .api()
            .register_instance(&self.instance_id, &reg)
            .await?;
        self.registered.set(true);
        Ok(())
    }

    pub(super) fn detached(&self) -> bool {
        self.torn_down.get() || self.iframe.as_ref().is_some_and(|f| !f.is_connected())
    }

    /// Tears down when the iframe left the document; returns whether it did.
    pub(super) fn check_detached(&self) -> bool {
        if self.detached() && !self.torn_down.get() {
            self.teardown();
        }
        self.torn_down.get()
    }

    pub(super) fn teardown(&self) {
        if self.torn_down.replace(true) {
            return;
        }
        // The widget's pending and later calls reject CLOSED instead of timing out.
        if let Some(s) = self.session.borrow().as_ref() {
            s.server
                .sender()
                .post(&protocol::event("closed", None, &[]));
        }
        if let Some((observer, _)) = self.src_observer.borrow_mut().take() {
            observer.disconnect();
        }
        self.close_session();
        self.calls.clear();
        if let (Some(f), Some(cb)) = (&self.iframe, self.on_load.borrow_mut().take()) {
            let _ = f.remove_event_listener_with_callback("load", cb.as_ref().unchecked_ref());
        }
        if let Ok(engine) = self.engine() {
            for (_, _, _, id) in self.watchers.borrow_mut().drain(..) {
                engine.unsubscribe(id);
            }
        }
        if let Some(h) = self.host.upgrade() {
            h.mounts
                .borrow_mut()
                .retain(|m| m.instance_id != self.instance_id || !m.torn_down.get());
            h.emit_simple("unmount", &self.instance_id);
        }
    }
}
