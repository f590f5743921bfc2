//! `ctx.cache` calls: browser-only storage of this instance, served by [`crate::cache`]
//! through the engine (never sent to the backend).

use super::mount::Mount;
use super::to_js;
use crate::sync::Engine;
use monodit_core::Error;
use wasm_bindgen::JsValue;

impl Mount {
    /// `ctx.cache.get`.
    pub(super) async fn cache_get(&self, engine: &Engine, key: &str) -> Result<JsValue, Error> {
        engine.cache().get(&self.instance_id, key).await
    }

    /// `ctx.cache.set`.
    pub(super) async fn cache_set(
        &self,
        engine: &Engine,
        key: &str,
        value: JsValue,
        ttl_ms: Option<f64>,
    ) -> Result<JsValue, Error> {
        engine
            .cache()
            .set(&self.instance_id, key, value, ttl_ms)
            .await?;
        Ok(JsValue::TRUE)
    }

    /// `ctx.cache.delete`.
    pub(super) async fn cache_delete(&self, engine: &Engine, key: &str) -> Result<JsValue, Error> {
        Ok(JsValue::from_bool(
            engine.cache().delete(&self.instance_id, key).await?,
        ))
    }

    /// `ctx.cache.keys`.
    pub(super) async fn cache_keys(&self, engine: &Engine) -> Result<JsValue, Error> {
        to_js(&engine.cache().keys(&self.instance_id).await?)
    }

    /// `ctx.cache.clear`.
    pub(super) async fn cache_clear(&self, engine: &Engine) -> Result<JsValue, Error> {
        engine.cache().clear(&self.instance_id).await?;
        Ok(JsValue::TRUE)
    }
}
