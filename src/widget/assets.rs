//! `ctx.assets`: the asset-bucket facade (upload, list, delete, subscribe).

use super::{
    field, map_promise, report_subscribe_failure, send, undefined, unsubscriber, with_binding,
};
use crate::errors::obj;
use crate::transport::Client;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `ctx.assets`: a set of files per bucket.
#[wasm_bindgen]
pub struct Assets {
    pub(super) client: Client,
    pub(super) binding: JsValue,
    pub(super) bucket: JsValue,
}

#[wasm_bindgen]
impl Assets {
    /// The same facade on an explicit bucket id (dynamic themes; widgets may name a new
    /// bucket or one created with the same contract, else INCOMPATIBLE_BUCKET).
    #[wasm_bindgen(js_name = withBucket)]
    pub fn with_bucket(&self, #[wasm_bindgen(js_name = bucketId)] bucket_id: JsValue) -> Assets {
        Assets {
            client: self.client.clone(),
            binding: self.binding.clone(),
            bucket: bucket_id,
        }
    }

    /// Uploads a `File`/`Blob` (it crosses the port as a Blob, never base64) and resolves
    /// with its download URL, stored exactly once however often the host had to retry.
    /// QUOTA_EXCEEDED rejects with `err.message === "QUOTA_EXCEEDED"`; a file the browser can
    /// no longer read (deleted or changed on disk since it was picked) with FILE_UNREADABLE.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob | File")] file: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<Object>,
    ) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let progress = field(&options, "onProgress").dyn_into::<Function>().ok();
        let args = obj(&[("file", &file), ("name", &field(&options, "name"))]);
        map_promise(
            self.client
                .call("assets.upload", self.target(args), progress),
            |v| field(&v, "url"),
        )
    }

    /// The bucket's assets (the source of truth for its contents).
    #[wasm_bindgen(unchecked_return_type = "Promise<AssetInfo[]>")]
    pub fn list(&self) -> Promise {
        send(&self.client, "assets.list", self.target(Object::new()))
    }

    /// Deletes one asset by its `objectKey`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, #[wasm_bindgen(js_name = objectKey)] object_key: JsValue) -> Promise {
        let args = obj(&[("objectKey", &object_key)]);
        map_promise(
            send(&self.client, "assets.delete", self.target(args)),
            undefined,
        )
    }

    /// Calls `cb(assets, meta)` whenever the bucket's contents change (uploads, deletes,
    /// revalidation, re-binding after a config change). Returns an unsubscribe function.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "(assets: AssetInfo[], meta: AssetMeta) => void"
        )]
        cb: Function,
        #[wasm_bindgen(js_name = onError, unchecked_optional_param_type = "(err: MonoditError) => void")]
        on_error: Option<Function>,
    ) -> Function {
        let wrapper = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let _ = cb.call2(&JsValue::NULL, &field(&ev, "assets"), &field(&ev, "meta"));
        });
        let args = Object::new();
        let _ = self.target(args.clone());
        let (id, answer) = self.client.subscribe(
            "assets.subscribe",
            args,
            wrapper.into_js_value().unchecked_into(),
        );
        report_subscribe_failure(answer, on_error);
        unsubscriber(&self.client, id, "assets.unsubscribe")
    }
}

impl Assets {
    fn target(&self, args: Object) -> JsValue {
        if !self.bucket.is_undefined() {
            let _ = Reflect::set(&args, &"namespace".into(), &self.bucket);
        }
        with_binding(args, &self.binding)
    }
}
