//! Plugin data calls (`ctx.storage` collections and `ctx.kv`): passed through to the server,
//! scoped by the manifest's plugin id once the backend accepted this instance's claim to it.

use super::mount::Mount;
use super::to_js;
use crate::sync::Engine;
use js_sys::Array;
use monodit_core::api::CollectionOp;
use monodit_core::ops::CollectionMethod;
use monodit_core::{Error, ErrorCode};
use serde_json::Value;
use wasm_bindgen::JsValue;

impl Mount {
    /// The plugin id `ctx.kv` and collections are scoped by: the manifest's `id` (or `slug`).
    /// A manifest without one has no kv (INVALID_MANIFEST says how to fix it). The id is only
    /// used once the backend accepted this instance's claim to it (core `plugins`): if the
    /// registration at mount failed for a transient reason, it is retried here first.
    pub(super) async fn plugin_id(&self) -> Result<&str, Error> {
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

    /// `ctx.storage`: one collection op, on a collection the manifest declares.
    pub(super) async fn storage(
        &self,
        engine: &Engine,
        collection: &str,
        op: CollectionOp,
    ) -> Result<JsValue, Error> {
        // Re-checked here whatever the widget's proxy did: the iframe is untrusted.
        self.manifest.collection(collection)?;
        let wanted_ids = match &op {
            CollectionOp::GetMany { ids } => Some(ids.clone()),
            _ => None,
        };
        let method = op.method();
        // Declared collections imply an id (core rule).
        let plugin = self.plugin_id().await?;
        let v = engine.collection(plugin, collection, op).await?;
        collection_result(method, v, wanted_ids)
    }

    /// `ctx.kv.get`.
    pub(super) async fn kv_get(&self, engine: &Engine, key: &str) -> Result<JsValue, Error> {
        let v = engine.api().kv_get(self.plugin_id().await?, key).await?;
        to_js(&v.unwrap_or(Value::Null))
    }

    /// `ctx.kv.set`.
    pub(super) async fn kv_set(
        &self,
        engine: &Engine,
        key: &str,
        value: Value,
    ) -> Result<JsValue, Error> {
        engine
            .api()
            .kv_set(self.plugin_id().await?, key, value)
            .await?;
        Ok(JsValue::TRUE)
    }

    /// `ctx.kv.delete`.
    pub(super) async fn kv_delete(&self, engine: &Engine, key: &str) -> Result<JsValue, Error> {
        Ok(JsValue::from_bool(
            engine.api().kv_delete(self.plugin_id().await?, key).await?,
        ))
    }

    /// `ctx.kv.list`: every page (the widget's `list()` returns every entry), within a bound that
    /// fails loudly rather than cutting the answer.
    pub(super) async fn kv_list(&self, engine: &Engine, prefix: &str) -> Result<JsValue, Error> {
        let plugin = self.plugin_id().await?;
        let mut entries = Vec::new();
        let mut after = String::new();
        loop {
            let page = engine.api().kv_list(plugin, prefix, &after).await?;
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
}

/// Shapes the backend's answer (core's `ops` result types) as the widget's `StorageCollection`
/// returns it (typings in `src/widget/typings.rs`).
pub(super) fn collection_result(
    method: CollectionMethod,
    v: Value,
    wanted: Option<Vec<String>>,
) -> Result<JsValue, Error> {
    Ok(match method {
        CollectionMethod::Get => to_js(v.get("item").unwrap_or(&Value::Null))?,
        CollectionMethod::Put | CollectionMethod::PutMany => JsValue::UNDEFINED,
        CollectionMethod::Delete | CollectionMethod::DeleteMany => {
            to_js(v.get("deleted").unwrap_or(&Value::Null))?
        }
        CollectionMethod::Exists => {
            JsValue::from_bool(v.get("exists").and_then(Value::as_bool).unwrap_or(false))
        }
        CollectionMethod::Count => to_js(v.get("count").unwrap_or(&Value::Null))?,
        CollectionMethod::Query => to_js(&v)?,
        CollectionMethod::GetMany => {
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
