//! Asset lists: memory → IndexedDB → server, re-listed when the bucket's version moved or its
//! signed download URLs are about to expire; uploads (through `crate::uploads`) and
//! deletions. Network, no IndexedDB of its own: lists in memory and the mirror are
//! `asset_lists.rs`'s.

use super::asset_lists::urls_fresh;
use super::{warn, BucketRef, Engine};
use futures::future::{FutureExt, LocalBoxFuture};
use monodit_core::api::AssetInfo;
use monodit_core::Error;
use std::rc::Rc;

impl Engine {
    /// The bucket's asset list: memory → IndexedDB → server; a cached answer returns at once
    /// and is re-checked in the background (subscribers get the new list if it changed).
    pub async fn assets_list(&self, b: &BucketRef) -> Result<Vec<AssetInfo>, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let cached = |me: &Engine| {
            me.state
                .borrow()
                .assets
                .get(&b.bucket_id)
                .map(|a| a.assets.clone())
        };
        let list = match cached(self) {
            Some(list) => list,
            None => {
                self.load_assets(&b.bucket_id).await?;
                cached(self).unwrap_or_default()
            }
        };
        if !urls_fresh(&list) {
            // The mirrored download URLs are (nearly) expired: list again. Offline, the stale
            // list is still better than nothing.
            return match self.fetch_assets(&b.bucket_id).await {
                Ok(changed) => {
                    if changed {
                        self.emit_assets(&b.bucket_id, true);
                    }
                    Ok(cached(self).unwrap_or_default())
                }
                Err(_) => Ok(list),
            };
        }
        self.want_check(&[], std::slice::from_ref(&b.bucket_id), false);
        Ok(list)
    }

    async fn load_assets(&self, bucket_id: &str) -> Result<(), Error> {
        let load = {
            let mut st = self.state.borrow_mut();
            if let Some(l) = st.asset_loads.get(bucket_id) {
                l.clone()
            } else {
                let me = self.rc().ok_or_else(Self::closed_error)?;
                let bucket = bucket_id.to_string();
                let fut: LocalBoxFuture<'static, Result<(), Error>> = Box::pin(async move {
                    if me.mirrored_assets(&bucket).await {
                        me.want_check(&[], &[bucket], false);
                        return Ok(());
                    }
                    me.fetch_assets(&bucket).await.map(|_| ())
                });
                let shared = fut.shared();
                st.asset_loads.insert(bucket_id.to_string(), shared.clone());
                shared
            }
        };
        let out = load.await;
        self.state.borrow_mut().asset_loads.remove(bucket_id);
        out
    }

    /// Lists from the server; stores and returns whether the list changed.
    async fn fetch_assets(&self, bucket_id: &str) -> Result<bool, Error> {
        let list = self.api.assets(bucket_id).await?;
        Ok(self
            .store_assets(bucket_id, list.version, list.assets)
            .await)
    }

    pub(super) async fn refresh_assets(&self, bucket_id: String) {
        match self.fetch_assets(&bucket_id).await {
            Ok(true) => self.emit_assets(&bucket_id, true),
            Ok(false) => {}
            Err(e) if !e.code.is_transient() => warn(&format!(
                "monodit-bridge: asset list of {bucket_id} failed: {e}"
            )),
            Err(_) => {}
        }
    }

    /// Uploads a file (progress as `(loaded, total)` bytes; see [`crate::uploads`] for
    /// retries, FILE_UNREADABLE and resuming), then refreshes the list and notifies the
    /// bucket's subscribers. Quota failures reject with QUOTA_EXCEEDED.
    pub async fn assets_upload(
        &self,
        b: &BucketRef,
        blob: web_sys::Blob,
        name: String,
        on_progress: Rc<dyn Fn(f64, f64)>,
    ) -> Result<AssetInfo, Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        let target = crate::uploads::UploadTarget {
            bucket_id: &b.bucket_id,
            contract: &b.contract,
            blob: &blob,
            name: &name,
        };
        let info = crate::uploads::upload(&self.api, &self.mirror, &target, on_progress).await?;
        self.refresh_assets(b.bucket_id.clone()).await;
        Ok(info)
    }

    /// Deletes one asset, then refreshes the list and notifies the bucket's subscribers.
    pub async fn assets_delete(&self, b: &BucketRef, object_key: &str) -> Result<(), Error> {
        if self.closed.get() {
            return Err(Self::closed_error());
        }
        self.api.delete_asset(&b.bucket_id, object_key).await?;
        self.refresh_assets(b.bucket_id.clone()).await;
        Ok(())
    }
}
