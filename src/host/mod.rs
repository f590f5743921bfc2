//! The host side: `Host`, which mounts widget iframes, binds each to a private MessagePort,
//! enforces the manifest's storage contract, and routes calls to the sync engine.
//!
//! Trust model: the iframe is untrusted. Everything it sends is decoded by
//! [`crate::protocol`] (types, sizes, ids) before it reaches the router here, which then
//! checks the contract: store/assets only through declared bindings (NO_BINDING), explicit
//! namespaces only for compatible or new buckets (INCOMPATIBLE_BUCKET), collections only when
//! declared (UNDECLARED_COLLECTION). The widget never names its instance or user: both are
//! bound to the port by the host.
//!
//! Lifecycle of a mount: a handshake on every iframe `load` (and on a `monodit:hello` from
//! that iframe's window, for widgets that connect after `load`) opens a fresh port and closes
//! the previous one with all its subscriptions; `unmount()`, and an iframe found detached from
//! the document, tear everything down.

mod assets;
mod cache;
mod config;
mod events;
mod mount;
mod navigation;
mod plugins;
mod resolve;
mod router;
mod session;
mod store;
mod typings;

pub use mount::{MountHandle, LOG_BURST, LOG_WINDOW_MS};

use crate::errors;
use crate::http::Api;
use crate::protocol;
use crate::sync::Engine;
use crate::transport;
use js_sys::{Array, Function, Promise, Reflect};
use monodit_core::buckets::{self, Backend};
use monodit_core::{Error, ErrorCode};
use mount::Mount;
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlIFrameElement, MessagePort};

/// The promise of an async export. Every export goes through the one boxed instantiation of
/// `future_to_promise` below: one copy per export's future type cost up to 5 KB of wasm each
/// (bench/README.md, "Bundle size").
fn promise(fut: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    boxed_promise(Box::pin(fut))
}

#[inline(never)]
fn boxed_promise(fut: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
    wasm_bindgen_futures::future_to_promise(fut)
}

fn js_err(e: Error) -> JsValue {
    errors::to_js(&e)
}

fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    protocol::to_js_value(v)
}

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// JSON of host-supplied options (trusted, but still bounded and checked).
fn json_of(v: &JsValue, what: &str) -> Result<Value, Error> {
    protocol::js_to_json(v, 4 * 1024 * 1024, what)
}

fn config_of(v: &JsValue) -> Result<Map<String, Value>, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(Map::new());
    }
    match json_of(v, "config")? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::invalid("config must be an object")),
    }
}

/// A DOM observer and the callback it holds.
type Observer = (web_sys::MutationObserver, Closure<dyn FnMut()>);

struct HostInner {
    engine: Rc<Engine>,
    mounts: RefCell<Vec<Rc<Mount>>>,
    listeners: RefCell<Vec<(u32, Function)>>,
    next_listener: Cell<u32>,
    hello: RefCell<Option<transport::PortListener>>,
    /// Watches the document for removed iframes (their mounts are torn down).
    observer: RefCell<Option<Observer>>,
}

impl HostInner {
    fn find(&self, instance_id: &str) -> Option<Rc<Mount>> {
        self.mounts
            .borrow()
            .iter()
            .find(|m| m.instance_id == instance_id)
            .cloned()
    }
}

/// The host page's side of the bridge (one per page and user).
#[wasm_bindgen]
pub struct Host {
    inner: Rc<HostInner>,
}

#[wasm_bindgen]
impl Host {
    /// Opens the host for a user: `{backendUrl, token, resumableUploadBytes?}`. Opens the
    /// local mirror (IndexedDB, memory when unavailable) and resumes the outbox.
    #[wasm_bindgen(unchecked_return_type = "Promise<Host>")]
    pub fn create(
        #[wasm_bindgen(unchecked_param_type = "HostOptions")] options: JsValue,
    ) -> Promise {
        promise(async move {
            let url = field(&options, "backendUrl")
                .as_string()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| js_err(Error::invalid("backendUrl is required")))?;
            let token = field(&options, "token")
                .as_string()
                .ok_or_else(|| js_err(Error::invalid("token is required")))?;
            let mut api = Api::new(&url, &token);
            let resumable = field(&options, "resumableUploadBytes");
            if !resumable.is_undefined() {
                let bytes = resumable
                    .as_f64()
                    .filter(|b| b.is_finite() && *b >= 0.0)
                    .ok_or_else(|| {
                        js_err(Error::invalid(
                            "resumableUploadBytes must be a number of bytes (0 or more)",
                        ))
                    })?;
                api = api.with_resumable_upload_bytes(bytes);
            }
            let engine = Engine::open(api).await.map_err(js_err)?;
            Ok(Host::from_engine(engine).into())
        })
    }

    /// Mounts a widget iframe: validates the manifest (INVALID_MANIFEST with every problem in
    /// `err.data`), registers the instance with the backend, and hands the iframe a private
    /// port on every `load`. Resolves with the mount's handle.
    #[wasm_bindgen(unchecked_return_type = "Promise<MountHandle>")]
    pub fn mount(
        &self,
        #[wasm_bindgen(unchecked_param_type = "HTMLIFrameElement")] iframe: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MountOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            // Checked here: a wrong element would otherwise throw inside the wasm and leave
            // this promise pending forever.
            let iframe = iframe.dyn_into::<HtmlIFrameElement>().map_err(|_| {
                js_err(Error::invalid(
                    "mount needs an <iframe> element (HTMLIFrameElement)",
                ))
            })?;
            let mount = Mount::create(&inner, Some(iframe), &options)
                .await
                .map_err(js_err)?;
            mount.watch_iframe();
            Ok(MountHandle { mount }.into())
        })
    }

    /// Mounts an instance on a port the caller already holds (tests; hosts that embed
    /// widgets in workers). The init message is sent at once.
    #[doc(hidden)]
    #[wasm_bindgen(js_name = mountPort, unchecked_return_type = "Promise<MountHandle>")]
    pub fn mount_port(
        &self,
        port: MessagePort,
        #[wasm_bindgen(unchecked_param_type = "MountOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let mount = Mount::create(&inner, None, &options)
                .await
                .map_err(js_err)?;
            mount.open_session(port);
            Ok(MountHandle { mount }.into())
        })
    }

    /// Buckets with their connected widgets (themes excluded), usage and quota.
    #[wasm_bindgen(unchecked_return_type = "Promise<Topology>")]
    pub fn topology(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.mounts.borrow_mut().retain(|m| !m.detached());
            let api = inner.engine.api();
            let (buckets, usage) = futures::join!(api.buckets(), api.usage());
            let (buckets, usage) = (buckets.map_err(js_err)?, usage.map_err(js_err)?);
            let out = Array::new();
            for b in &buckets {
                let v = to_js(b).map_err(js_err)?;
                let instances = Array::new();
                for i in &b.instances {
                    let iv = to_js(i).map_err(js_err)?;
                    let mounted = inner.find(&i.instance_id).is_some();
                    let _ = Reflect::set(&iv, &"mounted".into(), &JsValue::from_bool(mounted));
                    instances.push(&iv);
                }
                let _ = Reflect::set(&v, &"instances".into(), &instances);
                out.push(&v);
            }
            let usage = to_js(&usage).map_err(js_err)?;
            Ok(errors::obj(&[("buckets", &out), ("usage", &usage)]).into())
        })
    }

    /// Moves a mounted widget's binding to another bucket (new or compatible; else
    /// INCOMPATIBLE_BUCKET): writes the binding's config key, re-binds its subscriptions and
    /// tells the widget (`onConfigChange`). Resolves with the new config.
    #[wasm_bindgen(unchecked_return_type = "Promise<Record<string, unknown>>")]
    pub fn relink(
        &self,
        #[wasm_bindgen(js_name = instanceId, unchecked_param_type = "string")] instance_id: JsValue,
        #[wasm_bindgen(js_name = bindingKey, unchecked_param_type = "string")] binding_key: JsValue,
        #[wasm_bindgen(js_name = bucketId, unchecked_param_type = "string")] bucket_id: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let instance_id = string_arg(&instance_id, "instanceId")?;
            let binding_key = string_arg(&binding_key, "bindingKey")?;
            let bucket_id = string_arg(&bucket_id, "bucketId")?;
            let mount = inner.find(&instance_id).ok_or_else(|| {
                js_err(Error::new(
                    ErrorCode::NotFound,
                    format!("instance {instance_id:?} is not mounted on this page"),
                ))
            })?;
            let config = mount
                .relink(&binding_key, &bucket_id)
                .await
                .map_err(js_err)?;
            to_js(&config).map_err(js_err)
        })
    }

    /// Removes an instance for good (the user took the widget off the dashboard): unmounts it
    /// if it is mounted here and deletes its registration, so it leaves the topology and its
    /// manifest no longer counts toward its plugin's declared collections and indexes (nor
    /// holds the plugin id). Its buckets stay: they belong to the user (`deleteBucket`).
    /// `unmount` alone is for pages going away; NOT_FOUND if no such instance is registered.
    #[wasm_bindgen(js_name = removeInstance, unchecked_return_type = "Promise<void>")]
    pub fn remove_instance(
        &self,
        #[wasm_bindgen(js_name = instanceId, unchecked_param_type = "string")] instance_id: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let instance_id = string_arg(&instance_id, "instanceId")?;
            buckets::validate_instance_id(&instance_id).map_err(js_err)?;
            if let Some(mount) = inner.find(&instance_id) {
                mount.teardown();
            }
            inner
                .engine
                .api()
                .delete_instance(&instance_id)
                .await
                .map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes a bucket (document or assets) on the backend; mounted widgets connected to it
    /// fall back to their isolated buckets.
    #[wasm_bindgen(js_name = deleteBucket, unchecked_return_type = "Promise<DeletedBucket>")]
    pub fn delete_bucket(
        &self,
        #[wasm_bindgen(unchecked_param_type = "\"d1-json\" | \"r2-assets\"")] backend: JsValue,
        #[wasm_bindgen(js_name = bucketId, unchecked_param_type = "string")] bucket_id: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let bucket_id = string_arg(&bucket_id, "bucketId")?;
            let backend =
                Backend::parse(&backend.as_string().unwrap_or_default()).ok_or_else(|| {
                    js_err(Error::invalid(
                        "backend must be \"d1-json\" or \"r2-assets\"",
                    ))
                })?;
            buckets::validate_bucket_id(&bucket_id).map_err(js_err)?;
            let deleted = inner
                .engine
                .delete_bucket(backend, &bucket_id)
                .await
                .map_err(js_err)?;
            let mounts: Vec<Rc<Mount>> = inner.mounts.borrow().clone();
            for m in mounts {
                m.disconnect_bucket(backend, &bucket_id).await;
            }
            inner.engine.recheck();
            to_js(&deleted).map_err(js_err)
        })
    }

    /// The user's plugin ids with their instances, stored collection items and kv entries,
    /// and the source each is pinned to: what a storage settings page lists.
    #[wasm_bindgen(unchecked_return_type = "Promise<PluginInfo[]>")]
    pub fn plugins(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let list = inner.engine.api().plugins().await.map_err(js_err)?;
            to_js(&list).map_err(js_err)
        })
    }

    /// Deletes a plugin's collection items and `ctx.kv` entries (its "plugin data") and
    /// refunds their bytes. While instances still claim the id, their declaration and its pin
    /// stay (the widget starts over empty); otherwise the id is released. A plugin's data
    /// otherwise outlives its instances, and keeps the id pinned to its source.
    #[wasm_bindgen(js_name = deletePluginData, unchecked_return_type = "Promise<DeletedPlugin>")]
    pub fn delete_plugin_data(
        &self,
        #[wasm_bindgen(js_name = pluginId, unchecked_param_type = "string")] plugin_id: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let plugin_id = string_arg(&plugin_id, "pluginId")?;
            let deleted = inner
                .engine
                .api()
                .delete_plugin(&plugin_id)
                .await
                .map_err(js_err)?;
            to_js(&deleted).map_err(js_err)
        })
    }

    /// Adds an event-log listener: every optimistic/confirmed/revalidated/rollback (and asset
    /// change) of a mounted instance's buckets, with its instanceId, plus mount, handshake,
    /// config and protocol-error entries. Returns a function that removes the listener.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: HostEvent) => void")] cb: Function,
    ) -> Function {
        let id = self.inner.next_listener.get() + 1;
        self.inner.next_listener.set(id);
        self.inner.listeners.borrow_mut().push((id, cb));
        let weak = Rc::downgrade(&self.inner);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(i) = weak.upgrade() {
                i.listeners.borrow_mut().retain(|(x, _)| *x != id);
            }
        })
        .into_js_value()
        .unchecked_into()
    }

    /// Unmounts everything and closes the engine.
    pub fn close(&self) {
        let mounts: Vec<Rc<Mount>> = self.inner.mounts.borrow_mut().drain(..).collect();
        for m in mounts {
            m.teardown();
        }
        if let Some((observer, _)) = self.inner.observer.borrow_mut().take() {
            observer.disconnect();
        }
        if let (Some(w), Some(cb)) = (web_sys::window(), self.inner.hello.borrow_mut().take()) {
            let _ = w.remove_event_listener_with_callback("message", cb.as_ref().unchecked_ref());
        }
        self.inner.engine.close();
    }
}

impl Host {
    /// A host over an engine that is already open.
    pub fn from_engine(engine: Rc<Engine>) -> Host {
        let inner = Rc::new(HostInner {
            engine,
            mounts: RefCell::new(Vec::new()),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(0),
            hello: RefCell::new(None),
            observer: RefCell::new(None),
        });
        let hello = navigation::hello_listener(Rc::downgrade(&inner));
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("message", hello.as_ref().unchecked_ref());
        }
        *inner.hello.borrow_mut() = Some(hello);
        inner.observe_removals();
        Host { inner }
    }

    /// The engine behind this host.
    pub fn engine(&self) -> &Rc<Engine> {
        &self.inner.engine
    }
}

/// A string argument of a Host method, or INVALID_ARGUMENT naming it (a wrong type must not
/// reach wasm-bindgen's string conversion, which would trap).
fn string_arg(v: &JsValue, name: &str) -> Result<String, JsValue> {
    v.as_string()
        .ok_or_else(|| js_err(Error::invalid(format!("{name} must be a string"))))
}
