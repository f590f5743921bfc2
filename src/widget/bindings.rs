//! Typed Rust bindings to the JS `ctx` facades of `ctx.js` (for Rust callers and the browser
//! tests). The methods are imports: a widget bundle that does not call them from Rust
//! carries none of them. What each method does is documented where a widget author reads it,
//! in the TypeScript declarations (`typings.rs`).

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The object `connect()` resolves with (the `Ctx` of the typings).
    #[derive(Clone, Debug)]
    pub type CtxObject;
    /// This widget's instance id (chosen by the host).
    #[wasm_bindgen(method, getter, js_name = instanceId)]
    pub fn instance_id(this: &CtxObject) -> String;
    /// `"widget"` or `"theme"`.
    #[wasm_bindgen(method, getter)]
    pub fn kind(this: &CtxObject) -> String;
    /// The current instance config.
    #[wasm_bindgen(method, getter)]
    pub fn config(this: &CtxObject) -> JsValue;
    /// The manifest's storage bindings as the host sees them: `[{key, backend}]`.
    #[wasm_bindgen(method, getter)]
    pub fn bindings(this: &CtxObject) -> JsValue;
    /// `ctx.onConfigChange(cb)`: returns the function that unsubscribes.
    #[wasm_bindgen(method, js_name = onConfigChange)]
    pub fn on_config_change(this: &CtxObject, cb: Function) -> Function;
    /// `ctx.store`.
    #[wasm_bindgen(method, getter)]
    pub fn store(this: &CtxObject) -> Store;
    /// `ctx.assets`.
    #[wasm_bindgen(method, getter)]
    pub fn assets(this: &CtxObject) -> Assets;
    /// `ctx.binding(key)`.
    #[wasm_bindgen(method)]
    pub fn binding(this: &CtxObject, key: String) -> Binding;
    /// `ctx.cache`.
    #[wasm_bindgen(method, getter)]
    pub fn cache(this: &CtxObject) -> Cache;
    /// `ctx.kv`.
    #[wasm_bindgen(method, getter)]
    pub fn kv(this: &CtxObject) -> Kv;
    /// `ctx.log`.
    #[wasm_bindgen(method, getter)]
    pub fn log(this: &CtxObject) -> Log;
    /// `ctx.storage`: the proxy of declared collections.
    #[wasm_bindgen(method, getter)]
    pub fn storage(this: &CtxObject) -> JsValue;
    /// `ctx.close()`.
    #[wasm_bindgen(method)]
    pub fn close(this: &CtxObject);

    /// `ctx.store` (or a binding's `store`).
    pub type Store;
    /// `store.get(namespace?)`.
    #[wasm_bindgen(method)]
    pub fn get(this: &Store, namespace: Option<JsValue>) -> Promise;
    /// `store.set(value, options?)`.
    #[wasm_bindgen(method)]
    pub fn set(this: &Store, value: JsValue, options: Option<JsValue>) -> Promise;
    /// `store.update(fn, namespace?)`.
    #[wasm_bindgen(method)]
    pub fn update(this: &Store, f: Function, namespace: Option<JsValue>) -> Promise;
    /// `store.subscribe(namespace, cb, onError?)`: returns the unsubscribe function.
    #[wasm_bindgen(method)]
    pub fn subscribe(
        this: &Store,
        namespace: JsValue,
        cb: Function,
        on_error: Option<Function>,
    ) -> Function;

    /// `ctx.assets` (or a binding's `assets`).
    pub type Assets;
    /// `assets.withBucket(bucketId)`.
    #[wasm_bindgen(method, js_name = withBucket)]
    pub fn with_bucket(this: &Assets, bucket_id: JsValue) -> Assets;
    /// `assets.upload(file, options?)`.
    #[wasm_bindgen(method)]
    pub fn upload(this: &Assets, file: JsValue, options: Option<js_sys::Object>) -> Promise;
    /// `assets.list()`.
    #[wasm_bindgen(method)]
    pub fn list(this: &Assets) -> Promise;
    /// `assets.delete(objectKey)`.
    #[wasm_bindgen(method)]
    pub fn delete(this: &Assets, object_key: JsValue) -> Promise;
    /// `assets.subscribe(cb, onError?)`: returns the unsubscribe function.
    #[wasm_bindgen(method)]
    pub fn subscribe(this: &Assets, cb: Function, on_error: Option<Function>) -> Function;

    /// `ctx.binding(key)`: a named binding's facades.
    pub type Binding;
    /// The binding's document store.
    #[wasm_bindgen(method, getter)]
    pub fn store(this: &Binding) -> Store;
    /// The binding's asset bucket.
    #[wasm_bindgen(method, getter)]
    pub fn assets(this: &Binding) -> Assets;

    /// `ctx.cache`.
    pub type Cache;
    /// `cache.get(key)`.
    #[wasm_bindgen(method)]
    pub fn get(this: &Cache, key: JsValue) -> Promise;
    /// `cache.set(key, value, options?)`.
    #[wasm_bindgen(method)]
    pub fn set(
        this: &Cache,
        key: JsValue,
        value: JsValue,
        options: Option<js_sys::Object>,
    ) -> Promise;
    /// `cache.delete(key)`.
    #[wasm_bindgen(method)]
    pub fn delete(this: &Cache, key: JsValue) -> Promise;
    /// `cache.keys()`.
    #[wasm_bindgen(method)]
    pub fn keys(this: &Cache) -> Promise;
    /// `cache.clear()`.
    #[wasm_bindgen(method)]
    pub fn clear(this: &Cache) -> Promise;

    /// `ctx.kv`.
    pub type Kv;
    /// `kv.get(key)`.
    #[wasm_bindgen(method)]
    pub fn get(this: &Kv, key: JsValue) -> Promise;
    /// `kv.set(key, value)`.
    #[wasm_bindgen(method)]
    pub fn set(this: &Kv, key: JsValue, value: JsValue) -> Promise;
    /// `kv.delete(key)`.
    #[wasm_bindgen(method)]
    pub fn delete(this: &Kv, key: JsValue) -> Promise;
    /// `kv.list(prefix?)`.
    #[wasm_bindgen(method)]
    pub fn list(this: &Kv, prefix: Option<JsValue>) -> Promise;

    /// `ctx.log`.
    pub type Log;
    /// `log.debug(message, data?)`.
    #[wasm_bindgen(method)]
    pub fn debug(this: &Log, message: JsValue, data: Option<JsValue>);
    /// `log.info(message, data?)`.
    #[wasm_bindgen(method)]
    pub fn info(this: &Log, message: JsValue, data: Option<JsValue>);
    /// `log.warn(message, data?)`.
    #[wasm_bindgen(method)]
    pub fn warn(this: &Log, message: JsValue, data: Option<JsValue>);
    /// `log.error(message, data?)`.
    #[wasm_bindgen(method)]
    pub fn error(this: &Log, message: JsValue, data: Option<JsValue>);
}
