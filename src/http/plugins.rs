//! Plugin data routes: the plugin list and its deletion, collections, kv.

use super::{enc, Api};
use gloo_net::http::Request;
use monodit_core::api::CollectionOp;
use monodit_core::kv::{KvEntry, KvList, PutKv};
use monodit_core::routes;
use monodit_core::{Error, ErrorCode};
use serde_json::Value;

impl Api {
    /// `GET /v1/plugins` (core `api::PluginInfo` list). Passed on as JSON: the host only
    /// hands it to the page, and a typed copy would cost bundle bytes for nothing.
    pub async fn plugins(&self) -> Result<serde_json::Value, Error> {
        self.get_value("plugins", routes::PLUGINS).await
    }

    /// `DELETE /v1/plugins/{pluginId}` (core `api::DeletedPlugin`, as JSON like `plugins`).
    pub async fn delete_plugin(&self, plugin_id: &str) -> Result<serde_json::Value, Error> {
        let path = routes::plugin(plugin_id);
        self.delete_value("delete plugin data", &path).await
    }

    /// `POST /v1/collections/{pluginId}/{collection}/{op}` with the op (tag included) as body.
    pub async fn collection(
        &self,
        plugin_id: &str,
        collection: &str,
        op: &CollectionOp,
    ) -> Result<serde_json::Value, Error> {
        let url = self.url(&routes::collection_op(plugin_id, collection, op.method()));
        self.send_json("collection", Request::post(&url), op).await
    }

    /// `GET /v1/kv/{pluginId}/{key}`: the value, `None` when the key is unset.
    pub async fn kv_get(&self, plugin_id: &str, key: &str) -> Result<Option<Value>, Error> {
        // `missing=empty`: an unset key answers 204, not a 404 the browser would log as a
        // failed request (older servers still answer 404 NOT_FOUND, handled below).
        let path = format!("{}?missing=empty", routes::kv_key(plugin_id, key));
        let what = "kv get";
        let resp = self
            .send(what, self.authed(Request::get(&self.url(&path))), None)
            .await?;
        if resp.status() == 204 {
            return Ok(None);
        }
        match Self::parse::<KvEntry>(what, resp).await {
            Ok(e) => Ok(Some(e.value)),
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/kv/{pluginId}/{key}`.
    pub async fn kv_set(&self, plugin_id: &str, key: &str, value: Value) -> Result<KvEntry, Error> {
        let path = routes::kv_key(plugin_id, key);
        self.send_json("kv set", Request::put(&self.url(&path)), &PutKv { value })
            .await
    }

    /// `DELETE /v1/kv/{pluginId}/{key}`: whether the key existed.
    pub async fn kv_delete(&self, plugin_id: &str, key: &str) -> Result<bool, Error> {
        let path = routes::kv_key(plugin_id, key);
        let v = self.delete_value("kv delete", &path).await?;
        Ok(v.get("deleted").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `GET /v1/kv/{pluginId}?prefix=&after=`: one page of entries in key order (at most
    /// `kv::MAX_LIST`), after the key `after` (`""`: from the start).
    pub async fn kv_list(
        &self,
        plugin_id: &str,
        prefix: &str,
        after: &str,
    ) -> Result<KvList, Error> {
        let path = format!(
            "{}?prefix={}&after={}",
            routes::kv(plugin_id),
            enc(prefix),
            enc(after)
        );
        self.get_json("kv list", &path).await
    }
}
