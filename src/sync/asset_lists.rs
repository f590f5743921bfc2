//! Asset lists in memory and in the mirror: the state of a listed bucket, whether its signed
//! URLs are still fresh, a list read from or stored to IndexedDB, whether a metadata answer
//! means it must be listed again, and a deleted bucket's empty list. IndexedDB, no network
//! (the server's side of lists, uploads and deletions: `assets.rs`).

use super::{warn, Engine};
use crate::mirror::AssetRecord;
use crate::web::now;
use monodit_core::api::AssetInfo;

/// Signed download URLs expire (`AssetInfo::url_expires_at`); a list whose URLs expire within
/// this margin is listed again instead of being served from the mirror.
pub const URL_FRESH_MARGIN_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Whether every signed URL of a list stays valid for at least [`URL_FRESH_MARGIN_MS`]. A list
/// stored before answers carried the expiry is not: it is listed again once.
pub(super) fn urls_fresh(assets: &[AssetInfo]) -> bool {
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
    /// The mirrored list of a bucket into memory (unless memory has one already); whether the
    /// mirror had it.
    pub(super) async fn mirrored_assets(&self, bucket_id: &str) -> bool {
        let Some(rec) = self.mirror.get_assets(bucket_id).await else {
            return false;
        };
        self.state
            .borrow_mut()
            .assets
            .entry(bucket_id.to_string())
            .or_insert(AssetState {
                version: rec.version,
                assets: rec.assets,
                last_checked: 0.0,
            });
        true
    }

    /// A list the server just answered, into memory and the mirror; whether it changed.
    pub(super) async fn store_assets(
        &self,
        bucket_id: &str,
        version: u64,
        assets: Vec<AssetInfo>,
    ) -> bool {
        let changed = {
            let mut st = self.state.borrow_mut();
            let prev = st.assets.insert(
                bucket_id.to_string(),
                AssetState {
                    version,
                    assets: assets.clone(),
                    last_checked: now(),
                },
            );
            prev.map(|p| p.version != version || p.assets != assets)
                .unwrap_or(true)
        };
        let rec = AssetRecord {
            bucket_id: bucket_id.to_string(),
            version,
            assets,
        };
        if let Err(e) = self.mirror.put_assets(&rec).await {
            warn(&format!("monodit-bridge: mirror write failed: {e}"));
        }
        changed
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
