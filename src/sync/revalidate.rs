//! What the server holds, read in as few requests as possible: a bucket's first fetch,
//! metadata checks batched into one `POST /v1/meta`, revalidation fetches, and the re-checks
//! that browser events ask for (focus, visibility, online) with their window listeners.
//! Network only; what a fetched document does to memory and the mirror is `documents`' and
//! an asset list's is `assets`'.
//!
//! A cached answer returns at once and queues a metadata check; checks wanted within
//! [`BATCH_WINDOW_MS`] go out as ONE `POST /v1/meta`, deduplicated per bucket (and a bucket
//! checked less than [`DEDUPE_MS`] ago is not checked again unless forced), so N widgets on
//! one bucket never cause N requests. Only buckets whose server version moved are fetched in
//! full (`revalidated`).
//!
//! Re-checks of every active bucket (documents and asset lists) run on `visibilitychange` to
//! visible, on `online`, and on window `focus` when focus comes from outside the page (a
//! focus that follows a blur into one of the page's own iframes is ignored), at most once per
//! [`RECHECK_THROTTLE_MS`]: spurious focus events are common.

use super::doc::Doc;
use super::{warn, Engine};
use crate::http::DocumentFetch;
use crate::web::{now, sleep, EventListener};
use monodit_core::api::{self, BatchMetaRequest, BatchMetaResponse};
use monodit_core::queue::BucketQueue;
use monodit_core::Error;
use serde_json::Value;

/// Window in which metadata checks are gathered into one batch request.
pub const BATCH_WINDOW_MS: i32 = 10;
/// A bucket checked this recently is not checked again by a read (forced re-checks are).
pub const DEDUPE_MS: f64 = 2_000.0;
/// Focus / visibility / online re-checks run at most once per this interval.
pub const RECHECK_THROTTLE_MS: f64 = 5_000.0;

impl Engine {
    /// The server's document of a bucket that neither memory nor the mirror knows, as a base
    /// to install under any writes made meanwhile (a never-written bucket is `null`, version 0).
    pub(super) async fn fetch_base(&self, bucket_id: &str) -> Result<Doc, Error> {
        let fetched = self.api.document(bucket_id, None).await?;
        let mut base = match fetched {
            DocumentFetch::Fresh(doc) => Doc::with_queue(BucketQueue {
                contract: Some(doc.contract),
                confirmed_value: doc.value,
                confirmed_version: doc.meta.version,
                ..BucketQueue::default()
            }),
            DocumentFetch::Missing | DocumentFetch::NotModified => Doc::default(),
        };
        base.q.known = true;
        base.last_checked = now();
        Ok(base)
    }

    /// Queues metadata checks; everything queued within [`BATCH_WINDOW_MS`] goes in one request.
    pub(super) fn want_check(&self, docs: &[String], assets: &[String], force: bool) {
        if self.closed.get() {
            return;
        }
        let t = now();
        let mut st = self.state.borrow_mut();
        let mut added = false;
        for d in docs {
            let recent = st
                .docs
                .get(d)
                .map(|x| t - x.last_checked < DEDUPE_MS)
                .unwrap_or(false);
            if force || !recent {
                added |= st.want_docs.insert(d.clone());
            }
        }
        for a in assets {
            let recent = st
                .assets
                .get(a)
                .map(|x| t - x.last_checked < DEDUPE_MS)
                .unwrap_or(false);
            if force || !recent {
                added |= st.want_assets.insert(a.clone());
            }
        }
        if !added || st.batch_scheduled {
            return;
        }
        st.batch_scheduled = true;
        drop(st);
        let Some(me) = self.rc() else { return };
        wasm_bindgen_futures::spawn_local(async move {
            sleep(BATCH_WINDOW_MS).await;
            me.run_batch().await;
        });
    }

    async fn run_batch(&self) {
        let (docs, assets) = {
            let mut st = self.state.borrow_mut();
            st.batch_scheduled = false;
            let docs: Vec<String> = std::mem::take(&mut st.want_docs).into_iter().collect();
            let assets: Vec<String> = std::mem::take(&mut st.want_assets).into_iter().collect();
            let t = now();
            for d in &docs {
                if let Some(x) = st.docs.get_mut(d) {
                    x.last_checked = t;
                }
            }
            for a in &assets {
                if let Some(x) = st.assets.get_mut(a) {
                    x.last_checked = t;
                }
            }
            (docs, assets)
        };
        if self.closed.get() || (docs.is_empty() && assets.is_empty()) {
            return;
        }
        // More than the server's batch limit: several requests, still far fewer than buckets.
        let n = docs.len().max(assets.len());
        let chunks = n.div_ceil(api::MAX_BATCH_META).max(1);
        for i in 0..chunks {
            let lo = i * api::MAX_BATCH_META;
            let req = BatchMetaRequest {
                documents: docs
                    .iter()
                    .skip(lo)
                    .take(api::MAX_BATCH_META)
                    .cloned()
                    .collect(),
                assets: assets
                    .iter()
                    .skip(lo)
                    .take(api::MAX_BATCH_META)
                    .cloned()
                    .collect(),
            };
            match self.api.batch_meta(&req).await {
                Ok(resp) => self.apply_meta(resp).await,
                Err(e) => {
                    // Offline or server trouble: the next re-check tries again.
                    let mut st = self.state.borrow_mut();
                    for d in &req.documents {
                        if let Some(x) = st.docs.get_mut(d) {
                            x.last_checked = 0.0;
                        }
                    }
                    for a in &req.assets {
                        if let Some(x) = st.assets.get_mut(a) {
                            x.last_checked = 0.0;
                        }
                    }
                    if !e.code.is_transient() {
                        warn(&format!("monodit-bridge: metadata check failed: {e}"));
                    }
                }
            }
        }
    }

    async fn apply_meta(&self, resp: BatchMetaResponse) {
        let mut doc_fetches = Vec::new();
        for (bucket_id, meta) in resp.documents {
            let (have, known) = {
                let st = self.state.borrow();
                st.docs
                    .get(&bucket_id)
                    .map(|d| (d.q.confirmed_version, d.q.known))
                    .unwrap_or((0, false))
            };
            match meta {
                Some(m) if m.version > have || (!known && m.version > 0) => {
                    doc_fetches.push(self.revalidate_doc(bucket_id, have));
                }
                None if have > 0 => {
                    // Deleted on the server: the local copy is invalid.
                    self.apply_revalidated(&bucket_id, None, Value::Null, 0)
                        .await;
                }
                None if !known => self.learn_missing(&bucket_id).await,
                _ => {}
            }
        }
        let mut asset_fetches = Vec::new();
        for (bucket_id, meta) in resp.assets {
            let server = meta.map(|m| m.version).unwrap_or(0);
            if self.assets_outdated(&bucket_id, server).await {
                asset_fetches.push(self.refresh_assets(bucket_id));
            }
        }
        futures::future::join(
            futures::future::join_all(doc_fetches),
            futures::future::join_all(asset_fetches),
        )
        .await;
    }

    async fn revalidate_doc(&self, bucket_id: String, have: u64) {
        let cond = (have > 0).then_some(have);
        match self.api.document(&bucket_id, cond).await {
            Ok(DocumentFetch::Fresh(doc)) => {
                self.apply_revalidated(&bucket_id, Some(doc.contract), doc.value, doc.meta.version)
                    .await
            }
            Ok(DocumentFetch::Missing) if have > 0 => {
                self.apply_revalidated(&bucket_id, None, Value::Null, 0)
                    .await
            }
            Ok(_) => {}
            Err(e) if !e.code.is_transient() => warn(&format!(
                "monodit-bridge: revalidation of {bucket_id} failed: {e}"
            )),
            Err(_) => {}
        }
    }

    /// Fetches the server's document (unconditionally) and installs it if it is newer than
    /// what this tab holds: a send came back stale, so the server holds something newer.
    pub(super) async fn refetch_doc(&self, bucket_id: &str) {
        match self.api.document(bucket_id, None).await {
            Ok(DocumentFetch::Fresh(doc)) => {
                self.apply_revalidated(bucket_id, Some(doc.contract), doc.value, doc.meta.version)
                    .await
            }
            Ok(DocumentFetch::Missing) => {
                self.apply_revalidated(bucket_id, None, Value::Null, 0)
                    .await
            }
            // Unknown for now: the rollback shows the last confirmed value and a forced check
            // follows.
            _ => self.want_check(&[bucket_id.to_string()], &[], true),
        }
    }

    /// Re-checks every active bucket now (documents and asset lists, one batch request) and
    /// retries the outbox at once. Event-driven re-checks call this, throttled.
    ///
    /// Active means subscribed: a re-check exists to tell subscribers, and a bucket nobody
    /// listens to is checked on its next read anyway.
    pub fn recheck(&self) {
        let (docs, assets) = {
            let st = self.state.borrow();
            let docs: Vec<String> = st.doc_subs.keys().cloned().collect();
            let assets: Vec<String> = st.asset_subs.keys().cloned().collect();
            (docs, assets)
        };
        self.want_check(&docs, &assets, true);
        // Also with nothing pending here: another tab (maybe closed by now) may have left
        // writes in the shared outbox, which the flusher adopts.
        self.kick_flush();
    }

    /// Changes the minimum spacing of event-driven re-checks (focus, visibility, online);
    /// explicit [`Engine::recheck`] calls are never throttled.
    pub fn set_recheck_throttle_ms(&self, ms: f64) {
        self.recheck_throttle_ms.set(ms.max(0.0));
    }

    /// A re-check asked for by a browser event, at most once per throttle window
    /// ([`RECHECK_THROTTLE_MS`] unless [`Engine::set_recheck_throttle_ms`] changed it).
    fn event_recheck(&self) {
        let t = now();
        {
            let mut st = self.state.borrow_mut();
            if t - st.last_recheck < self.recheck_throttle_ms.get() {
                return;
            }
            st.last_recheck = t;
        }
        self.recheck();
    }

    pub(super) fn install_listeners(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let Some(document) = window.document() else {
            return;
        };
        let add = |target: &web_sys::EventTarget, name: &'static str, f: Box<dyn Fn(&Engine)>| {
            let me = self.me.clone();
            let listener = EventListener::new(target, name, move |_e| {
                if let Some(engine) = me.upgrade() {
                    if !engine.closed.get() {
                        f(&engine);
                    }
                }
            });
            self.listeners.borrow_mut().push(listener);
        };
        let doc_for_vis = document.clone();
        add(
            &document,
            "visibilitychange",
            Box::new(move |e| {
                if doc_for_vis.visibility_state() == web_sys::VisibilityState::Visible {
                    e.event_recheck();
                }
            }),
        );
        add(
            &window,
            "online",
            Box::new(|e| {
                e.kick_flush();
                e.event_recheck();
            }),
        );
        // Focus counts only when it comes from outside the page: when the window blurs because
        // focus moved into one of the page's own iframes, the document still has focus, and
        // the focus event that follows when it comes back is not a reason to re-check.
        let doc_for_blur = document.clone();
        add(
            &window,
            "blur",
            Box::new(move |e| {
                let me = e.me.clone();
                let d = doc_for_blur.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    // activeElement / hasFocus settle after the blur event.
                    sleep(0).await;
                    if let Some(engine) = me.upgrade() {
                        engine.state.borrow_mut().page_had_focus = d.has_focus().unwrap_or(false);
                    }
                });
            }),
        );
        add(
            &window,
            "focus",
            Box::new(|e| {
                let had = std::mem::replace(&mut e.state.borrow_mut().page_had_focus, true);
                if !had {
                    e.event_recheck();
                }
            }),
        );
    }
}
