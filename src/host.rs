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

use crate::errors;
use crate::http::Api;
use crate::protocol::{
    self, Call, Request, HELLO_TYPE, INIT_TYPE, MAX_SUBSCRIPTIONS, PROTOCOL_VERSION,
};
use crate::sync::{BucketRef, DocEvent, Engine, SubscriptionId};
use crate::transport::{self, Sender, Server};
use futures::FutureExt;
use js_sys::{Array, Function, Object, Promise, Reflect};
use monodit_core::api::{CollectionOp, InstanceKind, InstanceRegistration};
use monodit_core::buckets::{self, Backend};
use monodit_core::manifest::{Binding, Manifest};
use monodit_core::plugins;
use monodit_core::{Error, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use web_sys::{HtmlIFrameElement, MessageEvent, MessagePort};

#[wasm_bindgen(typescript_custom_section)]
const HOST_TS: &'static str = r#"
/** Options of `Host.create`. */
export interface HostOptions {
  backendUrl: string; token: string;
  /** Files larger than this many bytes are uploaded with the resumable protocol: in 8 MiB
   *  parts, resumed at the first missing part after a network failure, and after a reload of
   *  this page when the same file is uploaded to the same bucket again. Default 16 MiB
   *  (16777216); 0 makes every non-empty upload resumable. */
  resumableUploadBytes?: number;
}
/** Options of `host.mount`. */
export interface MountOptions {
  instanceId: string;
  /** "widget" (default) or "theme" (themes never appear in topology). */
  kind?: "widget" | "theme";
  /** The widget manifest (seed 000 storage bindings, seed 003 collections). */
  manifest: Record<string, unknown>;
  /** Instance config: `storageNamespace`, binding config keys (`assetBucketId`, ...), anything else; at most 16 KiB of JSON (PAYLOAD_TOO_LARGE). */
  config?: Record<string, unknown>;
  /**
   * Where the widget's code comes from. Defaults to the iframe's URL without query or
   * fragment. The manifest's plugin id (its collections and `ctx.kv`) belongs to the source
   * of the instances already holding it: a widget from another source claiming the id fails
   * with PLUGIN_ID_TAKEN. Pass a stable publisher id (`"acme/forms"`) when one widget is
   * served from several URLs, e.g. versioned paths.
   */
  source?: string;
}
/** A widget connected to a bucket, in `host.topology()`. */
export interface TopologyInstance {
  instanceId: string; bindingKey: string;
  /** True when the bucket is the instance's own default ("Isolated"). */
  isolated: boolean;
  /** True when the instance is mounted on this page right now. */
  mounted: boolean;
}
/** One bucket of `host.topology()`. */
export interface TopologyBucket {
  backend: "d1-json" | "r2-assets"; schemaId: string; schemaVersion: number;
  bucketId: string; bytes: number; version: number; createdAt: number;
  instances: TopologyInstance[];
}
/** `host.topology()`: buckets with connected widgets (themes excluded), usage and quota. */
export interface Topology {
  buckets: TopologyBucket[];
  usage: { plan: "free" | "pro"; usedBytes: number; limitBytes: number; collectionBytes: number };
}
/** What `host.deleteBucket` reports. */
export interface DeletedBucket { refundedBytes: number; deletedObjects: number; disconnectedInstances: string[]; }
/** A plugin id of the user (`host.plugins()`): who holds it and what it stores. */
export interface PluginInfo {
  pluginId: string;
  /** The source the id is pinned to (see `MountOptions.source`). */
  source?: string;
  /** Registered instances whose manifest claims it. */
  instances: string[];
  /** Collection items and their bytes, kv entries and their bytes (all count in the quota). */
  items: number; itemBytes: number; kvKeys: number; kvBytes: number;
}
/** What `host.deletePluginData` reports. `released`: no instance holds the id any more, so
 *  its pin is gone too. */
export interface DeletedPlugin { deletedItems: number; deletedKeys: number; refundedBytes: number; released: boolean; }
/** Entries of the host's event log (`host.onEvent`). */
export type HostEvent =
  | { type: "store"; kind: "optimistic" | "confirmed" | "revalidated" | "rollback"; instanceId: string;
      binding: string | null; bucket: string; version: number; pending: boolean }
  | { type: "assets"; instanceId: string; binding: string | null; bucket: string; version: number; count: number }
  | { type: "mount" | "unmount" | "handshake"; instanceId: string }
  | { type: "config"; instanceId: string; config: Record<string, unknown> }
  | { type: "protocolError"; instanceId: string; code: ErrorCode; message: string }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; instanceId: string; message: string; data?: unknown };
"#;

fn js_err(e: Error) -> JsValue {
    errors::to_js(&e)
}

fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding a reply: {e}")))
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
    fn emit(&self, ev: &JsValue) {
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

    fn emit_simple(&self, kind: &str, instance_id: &str) {
        self.emit(
            &errors::obj(&[
                ("type", &JsValue::from_str(kind)),
                ("instanceId", &JsValue::from_str(instance_id)),
            ])
            .into(),
        );
    }

    /// A removed iframe's document is gone: tear its mount down (port closed, subscriptions
    /// dropped) as soon as the DOM says so, not at the next call that will never come.
    fn observe_removals(self: &Rc<Self>) {
        let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        else {
            return;
        };
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut()>::new(move || {
            let Some(inner) = weak.upgrade() else { return };
            let gone: Vec<Rc<Mount>> = inner
                .mounts
                .borrow()
                .iter()
                .filter(|m| m.detached())
                .cloned()
                .collect();
            for m in gone {
                m.teardown();
            }
        });
        let Ok(observer) = web_sys::MutationObserver::new(cb.as_ref().unchecked_ref()) else {
            return;
        };
        let init = web_sys::MutationObserverInit::new();
        init.set_child_list(true);
        init.set_subtree(true);
        if observer.observe_with_options(&root, &init).is_ok() {
            *self.observer.borrow_mut() = Some((observer, cb));
        }
    }

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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        future_to_promise(async move {
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
        // A widget that connected after its iframe's `load` missed that handshake and asks
        // for one. Only the iframe's own window can be `source`, and the answer is just a
        // fresh port to that same window, so this grants nothing a widget did not have.
        let weak = Rc::downgrade(&inner);
        let hello = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            if field(&ev.data(), "type").as_string().as_deref() != Some(HELLO_TYPE) {
                return;
            }
            let Some(source) = ev.source() else { return };
            let mount = inner
                .mounts
                .borrow()
                .iter()
                .find(|m| {
                    m.iframe
                        .as_ref()
                        .and_then(|f| f.content_window())
                        .is_some_and(|w| Object::is(&w, &source))
                })
                .cloned();
            if let Some(m) = mount {
                m.doc_connected.set(true);
                // A hello storm must not make the host churn ports and flood its event log.
                let (start, n) = m.hello_window.get();
                let t = js_sys::Date::now();
                let (start, n) = if t - start >= 1_000.0 {
                    (t, 1)
                } else {
                    (start, n + 1)
                };
                m.hello_window.set((start, n));
                if n <= MAX_HELLOS_PER_SECOND {
                    m.handshake();
                }
            }
        });
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

/// What `host.mount` resolves with.
#[wasm_bindgen]
pub struct MountHandle {
    mount: Rc<Mount>,
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
        future_to_promise(async move {
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

/// An event-log watcher: (bucket, backend, binding key (`None`: explicit namespace), engine
/// subscription).
type Watcher = (String, Backend, Option<String>, SubscriptionId);

/// A widget subscription as the widget asked for it (re-resolved on config changes).
#[derive(Clone)]
enum SubSpec {
    Store {
        namespace: Option<String>,
        binding: Option<String>,
    },
    Assets {
        namespace: Option<String>,
        binding: Option<String>,
    },
}

struct WidgetSub {
    id: f64,
    spec: SubSpec,
    bucket: String,
    engine_id: SubscriptionId,
}

/// One port (one iframe document's connection).
struct Session {
    server: Server,
    subs: RefCell<Vec<WidgetSub>>,
}

struct Mount {
    host: Weak<HostInner>,
    instance_id: String,
    kind: InstanceKind,
    manifest: Manifest,
    manifest_json: Value,
    config: RefCell<Map<String, Value>>,
    iframe: Option<HtmlIFrameElement>,
    on_load: RefCell<Option<Closure<dyn FnMut()>>>,
    session: RefCell<Option<Rc<Session>>>,
    /// Event-log watchers: (bucket, backend, binding key, engine subscription).
    watchers: RefCell<Vec<Watcher>>,
    torn_down: Cell<bool>,
    /// Explicit asset buckets already found new or compatible.
    checked_assets: RefCell<std::collections::BTreeSet<String>>,
    /// Calls run once across re-handshakes (a re-sent upload must not upload twice).
    calls: transport::CallLog,
    /// `ctx.log` rate window: (start ms, entries in it, entries dropped).
    log_window: RefCell<(f64, u32, u32)>,
    /// Where the widget's code comes from (core `plugins`), when known: the mount's `source`
    /// option, else the iframe's URL at its last host-initiated load.
    source: RefCell<Option<String>>,
    /// Whether `source` came from the mount options (then the iframe URL is not consulted).
    explicit_source: bool,
    /// Whether the backend accepted the registration with the current source, so the
    /// plugin id is this widget's.
    registered: Cell<bool>,
    /// The host page changed the iframe's `src`/`srcdoc` since its last `load`.
    host_navigated: Cell<bool>,
    /// A widget document in the iframe has connected (hello or a call) since its last `load`.
    doc_connected: Cell<bool>,
    /// The widget navigated away by itself: no port until the host sets `src` again.
    suspended: Cell<bool>,
    /// Watches the iframe's `src`/`srcdoc` (host-initiated navigations).
    src_observer: RefCell<Option<Observer>>,
    /// Hello rate window: (start ms, hellos in it).
    hello_window: Cell<(f64, u32)>,
}

/// The source of the widget an iframe loads: its resolved URL without query or fragment;
/// none for `srcdoc` or blank frames (or a URL no source may be, see core `plugins`).
fn iframe_source(f: &HtmlIFrameElement) -> Option<String> {
    let s = plugins::source_of_url(&f.src());
    (s != "about:blank" && plugins::validate_source(&s).is_ok()).then_some(s)
}

/// A string argument of a Host method, or INVALID_ARGUMENT naming it (a wrong type must not
/// reach wasm-bindgen's string conversion, which would trap).
fn string_arg(v: &JsValue, name: &str) -> Result<String, JsValue> {
    v.as_string()
        .ok_or_else(|| js_err(Error::invalid(format!("{name} must be a string"))))
}

/// Most hellos per second one mount answers with a new port.
const MAX_HELLOS_PER_SECOND: u32 = 10;

/// Most `ctx.log` entries one mount may write per [`LOG_WINDOW_MS`].
pub const LOG_BURST: u32 = 100;
/// The `ctx.log` rate window (ms).
pub const LOG_WINDOW_MS: f64 = 1_000.0;

impl Mount {
    async fn create(
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
        // Themes may use store/assets without declaring bindings (seed 000): they get typed
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
            log_window: RefCell::new((0.0, 0, 0)),
            explicit_source,
            source: RefCell::new(source),
            registered: Cell::new(false),
            host_navigated: Cell::new(false),
            doc_connected: Cell::new(false),
            suspended: Cell::new(false),
            src_observer: RefCell::new(None),
            hello_window: Cell::new((0.0, 0)),
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

    fn engine(&self) -> Result<Rc<Engine>, Error> {
        self.host
            .upgrade()
            .map(|h| h.engine.clone())
            .ok_or_else(|| Error::new(ErrorCode::Closed, "the host was closed"))
    }

    /// Registers (or re-registers) the instance so topology knows its buckets. Offline or
    /// on a transient failure the mount still works from the mirror; the next config change
    /// or mount registers again, and so does the first plugin call ([`Mount::plugin`]).
    async fn register(&self) -> Result<(), Error> {
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

    /// Registers a new config: every refusal of the backend (INCOMPATIBLE_BUCKET, ...) is the
    /// caller's error, so a config the widget could not use is never applied. Only when the
    /// backend is unreachable does the config apply unregistered (the contracts this browser
    /// knows were checked already, see [`Mount::check_known_contracts`]); the next config
    /// change, mount or plugin call registers again.
    async fn register_config(&self) -> Result<(), Error> {
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

    /// Refuses (INCOMPATIBLE_BUCKET) a config that moves a document binding onto a bucket this
    /// browser knows was created with another contract, as the backend's registration would:
    /// it answers that too, but offline it cannot. A binding's own isolated bucket is not
    /// checked (the backend does not check it either: a schema upgrade never blocks it).
    async fn check_known_contracts(&self, config: &Map<String, Value>) -> Result<(), Error> {
        let engine = self.engine()?;
        let isolated = Map::new();
        for b in self.manifest.bindings_for(Backend::D1Json) {
            let bucket =
                buckets::resolve_bucket(&self.manifest, b, None, config, &self.instance_id)?;
            let own =
                buckets::resolve_bucket(&self.manifest, b, None, &isolated, &self.instance_id)?;
            if bucket == own {
                continue;
            }
            if let Some(have) = engine.known_contract(&bucket).await {
                buckets::check_compatible(&have, &b.contract())?;
            }
        }
        Ok(())
    }

    async fn try_register(&self) -> Result<(), Error> {
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

    fn detached(&self) -> bool {
        self.torn_down.get() || self.iframe.as_ref().is_some_and(|f| !f.is_connected())
    }

    /// Tears down when the iframe left the document; returns whether it did.
    fn check_detached(&self) -> bool {
        if self.detached() && !self.torn_down.get() {
            self.teardown();
        }
        self.torn_down.get()
    }

    fn watch_iframe(self: &Rc<Self>) {
        let Some(iframe) = &self.iframe else { return };
        let weak = Rc::downgrade(self);
        let on_load = Closure::<dyn FnMut()>::new(move || {
            if let Some(m) = weak.upgrade() {
                m.on_iframe_load();
            }
        });
        let _ = iframe.add_event_listener_with_callback("load", on_load.as_ref().unchecked_ref());
        *self.on_load.borrow_mut() = Some(on_load);
        // Mutation records arrive (microtasks) before the `load` they cause (a task).
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut()>::new(move || {
            if let Some(m) = weak.upgrade() {
                m.host_navigated.set(true);
            }
        });
        if let Ok(observer) = web_sys::MutationObserver::new(cb.as_ref().unchecked_ref()) {
            let init = web_sys::MutationObserverInit::new();
            init.set_attribute_filter(&Array::of2(&"src".into(), &"srcdoc".into()));
            if observer.observe_with_options(iframe, &init).is_ok() {
                *self.src_observer.borrow_mut() = Some((observer, cb));
            }
        }
        // The document may already be loaded (mount after load); a handshake now reaches it.
        // If it is still the initial about:blank, the `load` handshake replaces this one.
        if iframe.content_window().is_some() {
            self.handshake();
        }
    }

    /// An iframe `load`. The host's own navigations (it set `src`/`srcdoc`) and the first
    /// widget document after mount get a port, with the source re-read from the URL. A load
    /// the widget caused itself (a link, a redirect, `location` assignments or reloads), once
    /// a widget document had connected, is not trusted: whatever page it loaded would
    /// otherwise inherit this instance's storage. The mount is suspended (no port, hellos
    /// ignored, a `protocolError` event) until the host sets `src` again.
    fn on_iframe_load(self: &Rc<Self>) {
        let by_host = self.host_navigated.replace(false);
        let was_connected = self.doc_connected.replace(false);
        // Once suspended, only the host's own navigation lifts it (a page the widget went to
        // could otherwise navigate on, silently, and the next page would be trusted).
        if !by_host && (was_connected || self.suspended.get()) {
            self.close_session();
            self.suspended.set(true);
            self.log_protocol_error(&Error::new(
                ErrorCode::Forbidden,
                "the widget navigated away by itself; it stays disconnected until the host \
                 sets its src again",
            ));
            return;
        }
        self.suspended.set(false);
        self.refresh_source();
        self.handshake();
    }

    /// Re-reads the source from the iframe URL (unless the mount named one) and registers
    /// again when it changed or was never accepted; plugin calls wait for that.
    fn refresh_source(self: &Rc<Self>) {
        if !self.explicit_source {
            let now = self.iframe.as_ref().and_then(iframe_source);
            if *self.source.borrow() != now {
                *self.source.borrow_mut() = now;
                self.registered.set(false);
            }
        }
        if !self.registered.get() {
            let me = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = me.register().await {
                    me.log_protocol_error(&e);
                }
            });
        }
    }

    /// A fresh port for the iframe's current document; the previous one is closed.
    fn handshake(self: &Rc<Self>) {
        if self.check_detached() || self.suspended.get() {
            return;
        }
        let Some(win) = self.iframe.as_ref().and_then(|f| f.content_window()) else {
            return;
        };
        match transport::handshake(&win) {
            Ok(port) => self.open_session(port),
            Err(e) => {
                web_sys::console::warn_1(&format!("monodit-bridge: handshake failed: {e}").into())
            }
        }
    }

    fn open_session(self: &Rc<Self>, port: MessagePort) {
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
                    let run = async move { m2.route(&s, req, sender).await }.boxed_local();
                    m.calls.once(id, op, run).await
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

    fn init_message(&self) -> JsValue {
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

    fn close_session(&self) {
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

    fn teardown(&self) {
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

    fn log_protocol_error(&self, e: &Error) {
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

    // ----- kv and log -------------------------------------------------------------------------

    /// The plugin id `ctx.kv` and collections are scoped by: the manifest's `id` (or `slug`).
    /// A manifest without one has no kv (INVALID_MANIFEST says how to fix it). The id is only
    /// used once the backend accepted this instance's claim to it (core `plugins`): if the
    /// registration at mount failed for a transient reason, it is retried here first.
    async fn plugin_id(&self) -> Result<&str, Error> {
        let id = self.manifest.id.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidManifest,
                "ctx.kv is per plugin: the manifest needs an \"id\" (or \"slug\")",
            )
        })?;
        if !self.registered.get() {
            // The holder's details (its instance and URL) are for the host, not the widget.
            self.try_register().await.map_err(|e| match e.code {
                ErrorCode::PluginIdTaken => Error::new(
                    e.code,
                    format!("plugin id {id:?} belongs to a widget from another source"),
                ),
                _ => Error { detail: None, ..e },
            })?;
        }
        Ok(id)
    }

    /// `ctx.log`: one entry in the host's event log (`type: "log"`) and the page console,
    /// labelled with the instance, at most [`LOG_BURST`] per [`LOG_WINDOW_MS`] per mount so a
    /// runaway widget cannot flood the host page (the excess is counted and reported once).
    /// Returns whether the line was kept.
    fn log(&self, level: protocol::LogLevel, message: &str, data: Option<&Value>) -> bool {
        let now = js_sys::Date::now();
        {
            let mut w = self.log_window.borrow_mut();
            if now - w.0 >= LOG_WINDOW_MS {
                let dropped = w.2;
                *w = (now, 0, 0);
                if dropped > 0 {
                    web_sys::console::warn_1(
                        &format!(
                            "[{}] monodit-bridge: {dropped} log entries dropped (more than {LOG_BURST} in {LOG_WINDOW_MS} ms)",
                            self.instance_id
                        )
                        .into(),
                    );
                }
            }
            if w.1 >= LOG_BURST {
                w.2 += 1;
                return false;
            }
            w.1 += 1;
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

    // ----- bucket resolution ---------------------------------------------------------------

    fn binding(&self, backend: Backend, key: Option<&str>) -> Result<&Binding, Error> {
        self.manifest.select_binding(backend, key)
    }

    /// Seed 000 resolution through core: explicit → config → instanceId (per binding).
    fn resolve(
        &self,
        backend: Backend,
        key: Option<&str>,
        explicit: Option<&str>,
    ) -> Result<BucketRef, Error> {
        let binding = self.binding(backend, key)?;
        let config = self.config.borrow();
        let bucket_id = match backend {
            Backend::D1Json => buckets::resolve_document_bucket(
                &self.manifest,
                binding,
                explicit,
                &config,
                &self.instance_id,
            )?,
            Backend::R2Assets => buckets::resolve_asset_bucket(
                &self.manifest,
                binding,
                explicit,
                &config,
                &self.instance_id,
            )?,
        };
        Ok(BucketRef {
            bucket_id,
            contract: binding.contract(),
        })
    }

    /// An explicit namespace may only name a new bucket or one with the binding's contract.
    /// The engine's read checks the bucket's recorded contract (INCOMPATIBLE_BUCKET), and a
    /// never-written bucket reads as version 0, so this also creates nothing.
    async fn check_explicit(&self, b: &BucketRef) -> Result<(), Error> {
        self.engine()?.doc_get(b).await.map(|_| ())
    }

    /// The asset bucket of a call: bound (config key → instanceId), or an explicit one that
    /// must be new or hold the binding's contract. From then on the host's event log watches
    /// it (asset buckets are watched once a widget uses them, see [`Mount::rewatch`]).
    async fn resolve_assets(
        self: &Rc<Self>,
        binding: &Option<String>,
        explicit: &Option<String>,
    ) -> Result<BucketRef, Error> {
        let b = self.resolve(Backend::R2Assets, binding.as_deref(), explicit.as_deref())?;
        if explicit.is_some() {
            self.check_explicit_assets(&b).await?;
        }
        self.watch(
            &b.bucket_id,
            Backend::R2Assets,
            binding.clone(),
            explicit.is_some(),
        );
        Ok(b)
    }

    /// Asset buckets record their contract on the server; an explicit bucket id is checked
    /// against the bucket list once per mount and bucket (compatible stays compatible).
    async fn check_explicit_assets(&self, b: &BucketRef) -> Result<(), Error> {
        if self.checked_assets.borrow().contains(&b.bucket_id) {
            return Ok(());
        }
        let buckets = self.engine()?.api().buckets().await?;
        if let Some(found) = buckets
            .iter()
            .find(|x| x.bucket_id == b.bucket_id && x.contract.backend == Backend::R2Assets)
        {
            buckets::check_compatible(&found.contract, &b.contract)?;
        }
        self.checked_assets.borrow_mut().insert(b.bucket_id.clone());
        Ok(())
    }

    // ----- router --------------------------------------------------------------------------

    async fn route(
        self: &Rc<Self>,
        session: &Rc<Session>,
        req: Request,
        sender: Sender,
    ) -> Result<JsValue, Error> {
        let engine = self.engine()?;
        match req.call {
            Call::StoreGet { namespace, binding } => {
                let b = self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())?;
                let snap = engine.doc_get(&b).await?;
                self.watch(&b.bucket_id, Backend::D1Json, binding, namespace.is_some());
                let answer = snapshot_js(&snap.value, snap.version, snap.pending, &b.bucket_id)?;
                let head = snap.head.map_or(JsValue::NULL, JsValue::from_f64);
                let _ = js_sys::Reflect::set(&answer, &"head".into(), &head);
                Ok(answer)
            }
            Call::StoreSet {
                value,
                namespace,
                binding,
                if_version,
                if_head,
            } => {
                let b = self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())?;
                if namespace.is_some() {
                    self.check_explicit(&b).await?;
                }
                self.watch(&b.bucket_id, Backend::D1Json, binding, namespace.is_some());
                // Once the write is queued it is going to be sent, however long the server
                // stays away: the widget stops timing the call (see transport's "queued").
                // To the widget's current port, like upload progress: a re-sent copy of this
                // call (after a re-handshake) shares this run (see `CallLog`).
                let id = req.id;
                let mount = Rc::downgrade(self);
                let queued = move || {
                    let current = mount
                        .upgrade()
                        .and_then(|m| m.session.borrow().as_ref().map(|s| s.server.sender()))
                        .unwrap_or(sender);
                    current.post(&protocol::event(
                        "queued",
                        None,
                        &[("id", JsValue::from_f64(id))],
                    ));
                };
                let opts = crate::sync::WriteOptions {
                    if_version,
                    if_head,
                };
                let snap = engine.doc_write(&b, value, opts, queued).await?;
                snapshot_js(&snap.value, snap.version, snap.pending, &b.bucket_id)
            }
            Call::StoreSubscribe {
                subscription,
                namespace,
                binding,
            } => {
                let spec = SubSpec::Store { namespace, binding };
                self.subscribe(session, subscription, spec, &sender).await
            }
            Call::AssetsSubscribe {
                subscription,
                binding,
                namespace,
            } => {
                let spec = SubSpec::Assets { namespace, binding };
                self.subscribe(session, subscription, spec, &sender).await
            }
            Call::Unsubscribe { subscription } => {
                let removed: Vec<WidgetSub> = {
                    let mut subs = session.subs.borrow_mut();
                    let (gone, keep): (Vec<_>, Vec<_>) =
                        subs.drain(..).partition(|s| s.id == subscription);
                    *subs = keep;
                    gone
                };
                for s in &removed {
                    engine.unsubscribe(s.engine_id);
                }
                Ok(JsValue::from_bool(!removed.is_empty()))
            }
            Call::AssetsUpload {
                file,
                name,
                binding,
                namespace,
            } => {
                let b = self.resolve_assets(&binding, &namespace).await?;
                let id = req.id;
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
            Call::AssetsList { binding, namespace } => {
                let b = self.resolve_assets(&binding, &namespace).await?;
                to_js(&engine.assets_list(&b).await?)
            }
            Call::AssetsDelete {
                object_key,
                binding,
                namespace,
            } => {
                let b = self.resolve_assets(&binding, &namespace).await?;
                engine.assets_delete(&b, &object_key).await?;
                Ok(JsValue::TRUE)
            }
            Call::CacheGet { key } => engine.cache().get(&self.instance_id, &key).await,
            Call::CacheSet { key, value, ttl_ms } => {
                engine
                    .cache()
                    .set(&self.instance_id, &key, value, ttl_ms)
                    .await?;
                Ok(JsValue::TRUE)
            }
            Call::CacheDelete { key } => Ok(JsValue::from_bool(
                engine.cache().delete(&self.instance_id, &key).await?,
            )),
            Call::CacheKeys => to_js(&engine.cache().keys(&self.instance_id).await?),
            Call::CacheClear => {
                engine.cache().clear(&self.instance_id).await?;
                Ok(JsValue::TRUE)
            }
            Call::Storage { collection, op } => {
                // Re-checked here whatever the widget's proxy did: the iframe is untrusted.
                self.manifest.collection(&collection)?;
                let wanted_ids = match &op {
                    CollectionOp::GetMany { ids } => Some(ids.clone()),
                    _ => None,
                };
                let kind = collection_kind(&op);
                // Declared collections imply an id (core rule).
                let plugin = self.plugin_id().await?;
                let v = engine.collection(plugin, &collection, op).await?;
                collection_result(kind, v, wanted_ids)
            }
            Call::KvGet { key } => {
                let v = engine.api().kv_get(self.plugin_id().await?, &key).await?;
                to_js(&v.unwrap_or(Value::Null))
            }
            Call::KvSet { key, value } => {
                engine
                    .api()
                    .kv_set(self.plugin_id().await?, &key, value)
                    .await?;
                Ok(JsValue::TRUE)
            }
            Call::KvDelete { key } => Ok(JsValue::from_bool(
                engine
                    .api()
                    .kv_delete(self.plugin_id().await?, &key)
                    .await?,
            )),
            Call::KvList { prefix } => {
                // Every page (seed 003's list returns them all), within a bound that fails
                // loudly rather than cutting the answer.
                let plugin = self.plugin_id().await?;
                let mut entries = Vec::new();
                let mut after = String::new();
                loop {
                    let page = engine.api().kv_list(plugin, &prefix, &after).await?;
                    entries.extend(page.entries);
                    if !page.has_more {
                        break;
                    }
                    if entries.len() >= monodit_core::kv::MAX_LIST_TOTAL {
                        return Err(Error::new(
                            ErrorCode::PayloadTooLarge,
                            format!(
                                "more than {} keys start with {prefix:?}: list a narrower prefix",
                                monodit_core::kv::MAX_LIST_TOTAL
                            ),
                        ));
                    }
                    match entries.last() {
                        Some(e) => after = e.key.clone(),
                        None => break,
                    }
                }
                to_js(&entries)
            }
            Call::Log {
                level,
                message,
                data,
            } => {
                if self.log(level, &message, data.as_ref()) {
                    Ok(JsValue::TRUE)
                } else {
                    // The widget ignores it (`ctx.log` never throws); the port counts it.
                    Err(Error::new(ErrorCode::RateLimited, "log line dropped"))
                }
            }
            Call::Config => {
                let config = to_js(&*self.config.borrow())?;
                Ok(errors::obj(&[
                    ("instanceId", &JsValue::from_str(&self.instance_id)),
                    ("config", &config),
                ])
                .into())
            }
        }
    }

    async fn subscribe(
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

    fn resolve_spec(&self, spec: &SubSpec) -> Result<BucketRef, Error> {
        match spec {
            SubSpec::Store { namespace, binding } => {
                self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())
            }
            SubSpec::Assets { namespace, binding } => {
                self.resolve(Backend::R2Assets, binding.as_deref(), namespace.as_deref())
            }
        }
    }

    // ----- config, relink, delete ----------------------------------------------------------

    async fn set_config(self: &Rc<Self>, config: Map<String, Value>) -> Result<(), Error> {
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
    fn rebind(self: &Rc<Self>) {
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

    async fn relink(
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
    async fn disconnect_bucket(self: &Rc<Self>, backend: Backend, bucket_id: &str) {
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

    // ----- event log ---------------------------------------------------------------------

    /// Watches a bucket this instance uses so the host's event log sees its events. A bucket
    /// reached through an explicit namespace is recorded without a binding key: it stays
    /// watched whatever the config, while bound buckets follow it (see [`Mount::rewatch`]).
    fn watch(
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
                Rc::new(move |ev: &crate::sync::AssetEvent| {
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
    fn rewatch(self: &Rc<Self>) {
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

/// Config values that select buckets must be valid bucket ids (checked by resolving every
/// binding), so a bad config is refused at mount/setConfig time, not on the first call.
fn check_config(
    manifest: &Manifest,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<(), Error> {
    for b in &manifest.bindings {
        buckets::resolve_bucket(manifest, b, None, config, instance_id)?;
    }
    Ok(())
}

fn subscribe_engine(
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
            Rc::new(move |ev: &crate::sync::AssetEvent| {
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

fn snapshot_js(
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

#[derive(Clone, Copy)]
enum CollKind {
    Get,
    Unit,
    Deleted,
    Exists,
    GetMany,
    Query,
    Count,
}

/// Whether a call changes stored data, so that running it twice is not the same as once.
fn writes(call: &Call) -> bool {
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

fn collection_kind(op: &CollectionOp) -> CollKind {
    match op {
        CollectionOp::Get { .. } => CollKind::Get,
        CollectionOp::Put { .. } | CollectionOp::PutMany { .. } => CollKind::Unit,
        CollectionOp::Delete { .. } | CollectionOp::DeleteMany { .. } => CollKind::Deleted,
        CollectionOp::Exists { .. } => CollKind::Exists,
        CollectionOp::GetMany { .. } => CollKind::GetMany,
        CollectionOp::Query(_) => CollKind::Query,
        CollectionOp::Count { .. } => CollKind::Count,
    }
}

/// Shapes the backend's answer as seed 003's `StorageCollection` returns it.
fn collection_result(
    kind: CollKind,
    v: Value,
    wanted: Option<Vec<String>>,
) -> Result<JsValue, Error> {
    Ok(match kind {
        CollKind::Get => to_js(v.get("item").unwrap_or(&Value::Null))?,
        CollKind::Unit => JsValue::UNDEFINED,
        CollKind::Deleted => to_js(v.get("deleted").unwrap_or(&Value::Null))?,
        CollKind::Exists => {
            JsValue::from_bool(v.get("exists").and_then(Value::as_bool).unwrap_or(false))
        }
        CollKind::Count => to_js(v.get("count").unwrap_or(&Value::Null))?,
        CollKind::Query => to_js(&v)?,
        CollKind::GetMany => {
            // [[id, data], ...] in the order asked, so the widget's Map keeps that order.
            let items = v.get("items").and_then(Value::as_object);
            let out = Array::new();
            let mut seen = std::collections::BTreeSet::new();
            for id in wanted.unwrap_or_default() {
                if let Some(data) = items.and_then(|m| m.get(&id)) {
                    if seen.insert(id.clone()) {
                        out.push(&Array::of2(&JsValue::from_str(&id), &to_js(data)?));
                    }
                }
            }
            out.into()
        }
    })
}
