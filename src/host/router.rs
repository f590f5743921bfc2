//! The router: each call a widget sends on its port goes to the one handler of its kind. The
//! checks (bindings, contracts, declared collections) are the handlers' and `resolve`'s.

use super::mount::Mount;
use super::session::{Session, SubSpec};
use crate::protocol::{Call, Request};
use crate::sync::WriteOptions;
use crate::transport::Sender;
use monodit_core::Error;
use std::rc::Rc;
use wasm_bindgen::JsValue;

impl Mount {
    /// Runs one decoded call of this mount's widget.
    pub(super) async fn route(
        self: &Rc<Self>,
        session: &Rc<Session>,
        req: Request,
        sender: Sender,
    ) -> Result<JsValue, Error> {
        // Every call, including the ones that do not use it, fails CLOSED once the host is.
        let engine = self.engine()?;
        let id = req.id;
        match req.call {
            Call::StoreGet { namespace, binding } => {
                self.store_get(&engine, namespace, binding).await
            }
            Call::StoreSet {
                value,
                namespace,
                binding,
                if_version,
                if_head,
            } => {
                let opts = WriteOptions {
                    if_version,
                    if_head,
                };
                let b = (namespace, binding);
                self.store_set(&engine, id, sender, value, b, opts).await
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
                Ok(self.unsubscribe(&engine, session, subscription))
            }
            Call::AssetsUpload {
                file,
                name,
                binding,
                namespace,
            } => {
                let b = (namespace, binding);
                self.assets_upload(&engine, id, sender, file, name, b).await
            }
            Call::AssetsList { binding, namespace } => {
                self.assets_list(&engine, binding, namespace).await
            }
            Call::AssetsDelete {
                object_key,
                binding,
                namespace,
            } => {
                self.assets_delete(&engine, object_key, binding, namespace)
                    .await
            }
            Call::CacheGet { key } => self.cache_get(&engine, &key).await,
            Call::CacheSet { key, value, ttl_ms } => {
                self.cache_set(&engine, &key, value, ttl_ms).await
            }
            Call::CacheDelete { key } => self.cache_delete(&engine, &key).await,
            Call::CacheKeys => self.cache_keys(&engine).await,
            Call::CacheClear => self.cache_clear(&engine).await,
            Call::Storage { collection, op } => self.storage(&engine, &collection, op).await,
            Call::KvGet { key } => self.kv_get(&engine, &key).await,
            Call::KvSet { key, value } => self.kv_set(&engine, &key, value).await,
            Call::KvDelete { key } => self.kv_delete(&engine, &key).await,
            Call::KvList { prefix } => self.kv_list(&engine, &prefix).await,
            Call::Log {
                level,
                message,
                data,
            } => self.log_call(level, &message, data.as_ref()),
            Call::Config => self.config_call(),
        }
    }
}
