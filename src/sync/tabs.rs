//! Cross-tab messages: tabs of the same user share the IndexedDB mirror, and events, queued
//! writes and bucket deletions go to the other tabs over the BroadcastChannel
//! [`channel_name`]; each message is applied here to this tab's memory and subscribers. No
//! network, no IndexedDB.

use super::asset_lists::AssetState;
use super::events::EventKind;
use super::{DocSnapshot, Engine};
use crate::web::{now, Channel};
use monodit_core::api::AssetInfo;
use monodit_core::outbox::Settled;
use monodit_core::{Error, ErrorCode};
use serde::Serialize;
use serde_json::Value;

/// BroadcastChannel name for a user's cross-tab events.
pub fn channel_name(user_id: &str) -> String {
    format!("monodit-bridge:{user_id}")
}

/// A cross-tab message (JSON over BroadcastChannel). It is read back by `tab_wire::decode`,
/// which holds the reading rules; the `serde(default)` marks here only document them.
#[derive(Debug, Serialize)]
#[serde(tag = "t", rename_all = "camelCase")]
pub(super) enum TabMessage {
    #[serde(rename_all = "camelCase")]
    Doc {
        bucket_id: String,
        kind: EventKind,
        value: Value,
        confirmed_value: Value,
        confirmed_version: u64,
        pending: bool,
        #[serde(default)]
        mutation_id: Option<String>,
        /// More writes settled by the same event (a coalesced send, see `send_batch`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also_settled: Vec<String>,
        #[serde(default)]
        error: Option<Error>,
        /// The newest write of this browser confirmed for the bucket.
        #[serde(default)]
        settled: Settled,
    },
    /// Writes were committed to the shared outbox: whichever tab flushes sends them, even
    /// after the tab that made them closed.
    #[serde(rename_all = "camelCase")]
    Queued { bucket_ids: Vec<String> },
    #[serde(rename_all = "camelCase")]
    Assets {
        bucket_id: String,
        version: u64,
        assets: Vec<AssetInfo>,
    },
    /// A document bucket was deleted (see `Engine::delete_bucket`); its writes that were
    /// still queued arrive as `rollback` right after.
    #[serde(rename_all = "camelCase")]
    Deleted { bucket_id: String },
}

impl Engine {
    pub(super) fn open_channel(&self) {
        let me = self.me.clone();
        let channel = Channel::open(&channel_name(&self.user_id), move |text| {
            let Some(engine) = me.upgrade() else { return };
            if engine.closed.get() {
                return;
            }
            if let Some(msg) = super::tab_wire::decode(&text) {
                engine.on_tab_message(msg);
            }
        });
        *self.channel.borrow_mut() = channel;
    }

    pub(super) fn post(&self, msg: &TabMessage) {
        let ch = self.channel.borrow();
        let Some(ch) = ch.as_ref() else { return };
        if let Ok(text) = serde_json::to_string(msg) {
            ch.post(&text);
        }
    }

    fn on_tab_message(&self, msg: TabMessage) {
        match msg {
            TabMessage::Doc {
                bucket_id,
                kind,
                value,
                confirmed_value,
                confirmed_version,
                pending,
                mutation_id,
                also_settled,
                error,
                settled: newest,
            } => {
                let mut settled: Vec<String> = Vec::new();
                let superseded: Vec<String>;
                let snap = {
                    let mut st = self.state.borrow_mut();
                    if !st.docs.contains_key(&bucket_id) && !st.doc_subs.contains_key(&bucket_id) {
                        return; // a bucket this tab does not use
                    }
                    let doc = st.doc_mut(&bucket_id);
                    if confirmed_version > doc.q.confirmed_version {
                        doc.q.confirmed_value = confirmed_value;
                        doc.q.confirmed_version = confirmed_version;
                        doc.q.known = true;
                    }
                    if matches!(kind, EventKind::Confirmed | EventKind::Rollback) {
                        // Writes that another tab sent (or settled). Every waiter of ours
                        // for them settles with this outcome, also one whose write this tab
                        // already dropped because its outbox entry was gone (that tab
                        // announces before it deletes the entry; see `settled_elsewhere`).
                        settled = mutation_id.into_iter().chain(also_settled).collect();
                        doc.q.remove(&settled);
                    }
                    // Another tab got a newer write confirmed: ours older than it are
                    // superseded, newer ones rebased (that tab settles the outbox).
                    superseded = doc.q.merge_settled(newest);
                    if kind == EventKind::Optimistic && !doc.q.has_own() {
                        // The other tab's optimistic value, over our own confirmed version.
                        // Not while this tab has writes of its own queued: the other tab's
                        // value lacks them (its updates were computed on its own view), so
                        // this tab keeps showing its own until the server has both.
                        DocSnapshot {
                            value,
                            version: doc.q.confirmed_version,
                            pending,
                            head: None,
                        }
                    } else {
                        doc.snapshot()
                    }
                };
                for mid in superseded {
                    self.resolve_waiters(&mid, Ok(snap.clone()));
                }
                for mid in settled {
                    let result = match (&kind, &error) {
                        (EventKind::Rollback, Some(e)) => Err(e.clone()),
                        (EventKind::Rollback, None) => {
                            Err(Error::new(ErrorCode::Internal, "rolled back"))
                        }
                        _ => Ok(snap.clone()),
                    };
                    self.resolve_waiters(&mid, result);
                }
                self.emit_doc(&bucket_id, kind, &snap, &[], None, false);
            }
            TabMessage::Queued { bucket_ids } => {
                let _ = bucket_ids; // any tab may send any bucket's writes
                self.kick_flush();
            }
            TabMessage::Deleted { bucket_id } => {
                // The deleting tab already rewrote the shared mirror and rolled back the
                // outbox entries it found. Writes of this tab it could not see (not yet
                // committed) must not re-create the bucket either: they go too, and an entry
                // committed later is removed again by `persist` (no longer pending).
                let (snap, dropped) = {
                    let mut st = self.state.borrow_mut();
                    st.persist_queue.retain(|(_, w)| w.bucket_id != bucket_id);
                    let Some(doc) = st.docs.get_mut(&bucket_id) else {
                        return; // a bucket this tab does not use
                    };
                    let dropped: Vec<String> =
                        doc.q.delete().into_iter().map(|p| p.mutation_id).collect();
                    (doc.snapshot(), dropped)
                };
                let err = Error::new(
                    ErrorCode::NotFound,
                    "the bucket was deleted before this write reached the server",
                );
                for mid in &dropped {
                    self.resolve_waiters(mid, Err(err.clone()));
                }
                let (kind, error) = if dropped.is_empty() {
                    (EventKind::Revalidated, None)
                } else {
                    (EventKind::Rollback, Some(&err))
                };
                self.emit_doc(&bucket_id, kind, &snap, &dropped, error, false);
            }
            TabMessage::Assets {
                bucket_id,
                version,
                assets,
            } => {
                let changed = {
                    let mut st = self.state.borrow_mut();
                    if !st.assets.contains_key(&bucket_id)
                        && !st.asset_subs.contains_key(&bucket_id)
                    {
                        return; // a bucket this tab does not use
                    }
                    let prev = st.assets.insert(
                        bucket_id.clone(),
                        AssetState {
                            version,
                            assets,
                            last_checked: now(),
                        },
                    );
                    prev.map(|p| p.version != version).unwrap_or(true)
                };
                if changed {
                    self.emit_assets(&bucket_id, false);
                }
            }
        }
    }
}
