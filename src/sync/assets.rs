//! Asset lists: memory → IndexedDB → server, re-listed when the bucket's version moved or its
//! signed download URLs are about to expire; uploads (through `crate::uploads`), deletions,
//! and the list of a deleted asset bucket. Network and IndexedDB both: a list is a small
//! read-through copy of one server answer, stored as soon as it arrives.

use super::{warn, BucketRef, Engine};
use crate::mirror::AssetRecord;
use crate::web::now;
use futures::future::{FutureExt, LocalBoxFuture};
use monodit_core::api::AssetInfo;
use monodit_core::Error;
use std::rc::Rc;

/// Signed download URLs expire (`AssetInfo::url_expires_at`); a list whose URLs expire within
/// this margin is listed again instead of being served from the mirror.
pub const URL_FRESH_MARGIN_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Whether every signed URL of a list stays valid for at least [`URL_FRESH_MARGIN_MS`]. A list
/// stored before answers carried the expiry is not: it is listed again once.
fn urls_fresh(assets: &[AssetInfo]) -> bool {
    let limit = now() + URL_FRESH_MARGIN_MS;
    assets
        .iter()
        .all(|a| a.url_expires_at.is_some_and(|e| e as f64 > limit))
}

#[derive(Debug, Clone)]
pub(super) struct AssetState {
    pub(super) version: u64,
    pub(super) assets: Vec<AssetInfo>,
    pub(super) last_checked: f64,
}

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
                    if let Some(rec) = me.mirror.get_assets(&bucket).await {
                        me.state
                            .borrow_mut()
                            .assets
                            .entry(bucket.clone())
                            .or_insert(AssetState {
                                version: rec.version,
                                assets: rec.assets,
                                last_checked: 0.0,
                            });
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
        let changed = {
            let mut st = self.state.borrow_mut();
            let prev = st.assets.insert(
                bucket_id.to_string(),
                AssetState {
                    version: list.version,
                    assets: list.assets.clone(),
                    last_checked: now(),
                },
            );
            prev.map(|p| p.version != list.version || p.assets != list.assets)
                .unwrap_or(true)
        };
        let rec = AssetRecord {
            bucket_id: bucket_id.to_string(),
            version: list.version,
            assets: list.assets,
        };
        if let Err(e) = self.mirror.put_assets(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        Ok(changed)
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

    /// Whether a metadata check that answered `server` for the bucket means its list must be
    /// fetched again: the version moved or its download URLs are (nearly) expired.
    pub(super) async fn assets_outdated(&self, bucket_id: &str, server: u64) -> bool {
        let known = |me: &Engine| {
            me.state
                .borrow()
                .assets
                .get(bucket_id)
                .map(|a| (a.version, urls_fresh(&a.assets)))
        };
        let mut have = known(self);
        if have.is_none() {
            // Never listed on this page: the mirror may hold the list, and a bucket the
            // server does not have is an empty list at version 0. Neither needs a fetch.
            let start = match self.mirror.get_assets(bucket_id).await {
                Some(rec) => Some((rec.version, rec.assets)),
                None if server == 0 => Some((0, Vec::new())),
                None => None,
            };
            if let Some((version, assets)) = start {
                self.state
                    .borrow_mut()
                    .assets
                    .entry(bucket_id.to_string())
                    .or_insert(AssetState {
                        version,
                        assets,
                        last_checked: now(),
                    });
                have = known(self);
            }
        }
        !matches!(have, Some((v, fresh)) if v == server && fresh)
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

    /// The asset bucket is gone on the server: its list is empty at version 0.
    pub(super) async fn forget_assets(&self, bucket_id: &str) {
        self.state.borrow_mut().assets.insert(
            bucket_id.to_string(),
            AssetState {
                version: 0,
                assets: Vec::new(),
                last_checked: now(),
            },
        );
        self.emit_assets(bucket_id, true);
        let rec = AssetRecord {
            bucket_id: bucket_id.to_string(),
            version: 0,
            assets: Vec::new(),
        };
        if let Err(e) = self.mirror.put_assets(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
    }
}
