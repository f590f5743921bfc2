//! Subscriptions and event delivery: every document event carries what the bucket shows now,
//! to this page's subscribers and (through `tabs`) to the user's other tabs; `replay` hands one
//! subscription the state of a bucket it was moved to. No network, no IndexedDB of its own
//! (`replay` reads through `documents` and `assets`).

use super::tabs::TabMessage;
use super::{BucketRef, DocSnapshot, Engine};
use monodit_core::api::AssetInfo;
use monodit_core::buckets::Backend;
use monodit_core::outbox::Settled;
use monodit_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::rc::Rc;

/// Why a document event fired (`meta.kind` for widgets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A local write, shown before the server confirmed it.
    Optimistic,
    /// The server confirmed a write.
    Confirmed,
    /// A newer server version was fetched (another client wrote, or the bucket was deleted).
    Revalidated,
    /// A write failed permanently and was undone.
    Rollback,
}

impl EventKind {
    /// `"optimistic"`, `"confirmed"`, `"revalidated"` or `"rollback"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Optimistic => "optimistic",
            EventKind::Confirmed => "confirmed",
            EventKind::Revalidated => "revalidated",
            EventKind::Rollback => "rollback",
        }
    }
}

/// A change of a document bucket, delivered to its subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct DocEvent {
    /// The bucket.
    pub bucket_id: String,
    /// Why it fired.
    pub kind: EventKind,
    /// What the bucket shows now.
    pub value: Value,
    /// The last server-confirmed version (0 = never written).
    pub version: u64,
    /// Whether writes are still unconfirmed.
    pub pending: bool,
}

/// A change of an asset bucket's list.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEvent {
    /// The bucket.
    pub bucket_id: String,
    /// The whole list, oldest first.
    pub assets: Vec<AssetInfo>,
    /// The bucket's change counter.
    pub version: u64,
}

/// Handle returned by the subscribe methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The raw number (for protocol messages).
    pub fn get(self) -> u64 {
        self.0
    }
}

pub(super) type DocCb = Rc<dyn Fn(&DocEvent)>;
pub(super) type AssetCb = Rc<dyn Fn(&AssetEvent)>;

impl Engine {
    /// Subscribes to a document bucket's events.
    pub fn doc_subscribe(&self, bucket_id: &str, cb: Rc<dyn Fn(&DocEvent)>) -> SubscriptionId {
        let mut st = self.state.borrow_mut();
        st.next_id += 1;
        let id = st.next_id;
        st.doc_subs
            .entry(bucket_id.to_string())
            .or_default()
            .push((id, cb));
        SubscriptionId(id)
    }

    /// Subscribes to an asset bucket's list changes.
    pub fn assets_subscribe(&self, bucket_id: &str, cb: Rc<dyn Fn(&AssetEvent)>) -> SubscriptionId {
        let mut st = self.state.borrow_mut();
        st.next_id += 1;
        let id = st.next_id;
        st.asset_subs
            .entry(bucket_id.to_string())
            .or_default()
            .push((id, cb));
        SubscriptionId(id)
    }

    /// Gives one subscription the bucket's current state, as a `revalidated` document event or
    /// an asset list event: used when the bucket behind a subscription changed (a config
    /// change, re-link or bucket deletion moved the binding), so a widget that only subscribes
    /// shows the new bucket instead of the old one. Nothing is delivered if the subscription
    /// ended meanwhile or the state cannot be read (a later check will deliver it).
    pub async fn replay(&self, b: &BucketRef, id: SubscriptionId) {
        match b.contract.backend {
            Backend::D1Json => {
                let Ok(snap) = self.doc_get(b).await else {
                    return;
                };
                let cb = self
                    .state
                    .borrow()
                    .doc_subs
                    .get(&b.bucket_id)
                    .and_then(|subs| {
                        subs.iter()
                            .find(|(i, _)| *i == id.0)
                            .map(|(_, cb)| cb.clone())
                    });
                if let Some(cb) = cb {
                    cb(&DocEvent {
                        bucket_id: b.bucket_id.clone(),
                        kind: EventKind::Revalidated,
                        value: snap.value,
                        version: snap.version,
                        pending: snap.pending,
                    });
                }
            }
            Backend::R2Assets => {
                let Ok(assets) = self.assets_list(b).await else {
                    return;
                };
                let (cb, version) = {
                    let st = self.state.borrow();
                    let cb = st.asset_subs.get(&b.bucket_id).and_then(|subs| {
                        subs.iter()
                            .find(|(i, _)| *i == id.0)
                            .map(|(_, cb)| cb.clone())
                    });
                    (cb, st.assets.get(&b.bucket_id).map_or(0, |a| a.version))
                };
                if let Some(cb) = cb {
                    cb(&AssetEvent {
                        bucket_id: b.bucket_id.clone(),
                        assets,
                        version,
                    });
                }
            }
        }
    }

    /// Removes a subscription (unknown ids are ignored).
    pub fn unsubscribe(&self, id: SubscriptionId) {
        let mut st = self.state.borrow_mut();
        for subs in st.doc_subs.values_mut() {
            subs.retain(|(i, _)| *i != id.0);
        }
        st.doc_subs.retain(|_, s| !s.is_empty());
        for subs in st.asset_subs.values_mut() {
            subs.retain(|(i, _)| *i != id.0);
        }
        st.asset_subs.retain(|_, s| !s.is_empty());
    }

    /// Delivers an event to this page's subscribers and (if `broadcast`) to the user's other tabs.
    pub(super) fn emit_doc(
        &self,
        bucket_id: &str,
        kind: EventKind,
        snap: &DocSnapshot,
        mutation_ids: &[String],
        error: Option<&Error>,
        broadcast: bool,
    ) {
        let (subs, confirmed) = {
            let st = self.state.borrow();
            let subs: Vec<DocCb> = st
                .doc_subs
                .get(bucket_id)
                .map(|v| v.iter().map(|(_, cb)| cb.clone()).collect())
                .unwrap_or_default();
            let confirmed = st
                .docs
                .get(bucket_id)
                .map(|d| {
                    (
                        d.q.confirmed_value.clone(),
                        d.q.confirmed_version,
                        d.q.settled,
                    )
                })
                .unwrap_or((Value::Null, 0, Settled::default()));
            (subs, confirmed)
        };
        if broadcast {
            self.post(&TabMessage::Doc {
                bucket_id: bucket_id.to_string(),
                kind,
                value: snap.value.clone(),
                confirmed_value: confirmed.0,
                confirmed_version: confirmed.1,
                pending: snap.pending,
                mutation_id: mutation_ids.first().cloned(),
                also_settled: mutation_ids.iter().skip(1).cloned().collect(),
                error: error.cloned(),
                settled: confirmed.2,
            });
        }
        if subs.is_empty() {
            return;
        }
        let ev = DocEvent {
            bucket_id: bucket_id.to_string(),
            kind,
            value: snap.value.clone(),
            version: snap.version,
            pending: snap.pending,
        };
        for cb in subs {
            cb(&ev);
        }
    }

    pub(super) fn emit_assets(&self, bucket_id: &str, broadcast: bool) {
        let (subs, ev) = {
            let st = self.state.borrow();
            let Some(a) = st.assets.get(bucket_id) else {
                return;
            };
            let subs: Vec<AssetCb> = st
                .asset_subs
                .get(bucket_id)
                .map(|v| v.iter().map(|(_, cb)| cb.clone()).collect())
                .unwrap_or_default();
            let ev = AssetEvent {
                bucket_id: bucket_id.to_string(),
                assets: a.assets.clone(),
                version: a.version,
            };
            (subs, ev)
        };
        if broadcast {
            self.post(&TabMessage::Assets {
                bucket_id: ev.bucket_id.clone(),
                version: ev.version,
                assets: ev.assets.clone(),
            });
        }
        for cb in subs {
            cb(&ev);
        }
    }
}
