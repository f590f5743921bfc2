//! Helpers shared by the data-layer browser tests (tests/browser/data_*.rs): a fresh user per test on
//! the real server, bounded waiting, and event recorders.
#![allow(dead_code)]

use monodit_bridge::http::Api;
use monodit_bridge::sync::{AssetEvent, BucketRef, DocEvent, DocSnapshot, Engine, EventKind};
use monodit_core::api::{Contract, Plan, PutDocument};
use monodit_core::buckets::Backend;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// The backend URL, compiled in by scripts/with-server.sh.
pub fn server() -> &'static str {
    // Compiled in (not read at run time): the wasm test has no environment of its own.
    match option_env!("MONODIT_TEST_SERVER") {
        Some(url) => url,
        None => {
            panic!("MONODIT_TEST_SERVER is unset: run browser tests through scripts/with-server.sh")
        }
    }
}

/// A fresh user on the real server: its Api, user id and bearer token.
pub async fn new_user_with_token(plan: Plan) -> (Api, String, String) {
    let u = Api::dev_new_user(server(), plan)
        .await
        .expect("POST /v1/dev/users (is the server running with --dev?)");
    (Api::new(server(), &u.token), u.user_id, u.token)
}

/// A fresh user on the real server: its Api and user id.
pub async fn new_user(plan: Plan) -> (Api, String) {
    let u = Api::dev_new_user(server(), plan)
        .await
        .expect("POST /v1/dev/users (is the server running with --dev?)");
    (Api::new(server(), &u.token), u.user_id)
}

/// A unique id for buckets and instances.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// The notes contract (notes.plaintext v1, as in the README's manifest).
pub fn notes() -> Contract {
    Contract {
        backend: Backend::D1Json,
        schema_id: "notes.plaintext".into(),
        schema_version: 1,
    }
}

/// A d1-json bucket with the notes contract.
pub fn doc_bucket(id: &str) -> BucketRef {
    BucketRef {
        bucket_id: id.to_string(),
        contract: notes(),
    }
}

/// An r2-assets bucket with the gallery contract.
pub fn asset_bucket(id: &str) -> BucketRef {
    BucketRef {
        bucket_id: id.to_string(),
        contract: Contract {
            backend: Backend::R2Assets,
            schema_id: "gallery.assets".into(),
            schema_version: 1,
        },
    }
}

/// A write made by "another client": a plain HTTP PUT, no engine involved.
pub async fn remote_put(api: &Api, bucket: &str, value: serde_json::Value) -> u64 {
    api.put_document(
        bucket,
        &PutDocument {
            value,
            schema_id: notes().schema_id,
            schema_version: 1,
            mutation_id: None,
            expected_version: None,
        },
    )
    .await
    .expect("remote PUT")
    .version
}

/// Sleeps on the browser timer.
pub async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// Waits (bounded: 10 s) until `cond` holds; fails the test with `what` otherwise.
pub async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Records every document event of one subscription.
#[derive(Clone, Default)]
pub struct DocRecorder(pub Rc<RefCell<Vec<DocEvent>>>);

impl DocRecorder {
    /// Subscribes a new recorder to `bucket` on `engine`.
    pub fn on(engine: &Engine, bucket: &str) -> DocRecorder {
        let r = DocRecorder::default();
        let events = r.0.clone();
        engine.doc_subscribe(
            bucket,
            Rc::new(move |e: &DocEvent| events.borrow_mut().push(e.clone())),
        );
        r
    }
    /// The kinds seen, in order.
    pub fn kinds(&self) -> Vec<EventKind> {
        self.0.borrow().iter().map(|e| e.kind).collect()
    }
    /// All events.
    pub fn events(&self) -> Vec<DocEvent> {
        self.0.borrow().clone()
    }
    /// Each event's kind, value and pending flag, in order.
    pub fn shown(&self) -> Vec<(EventKind, serde_json::Value, bool)> {
        self.0
            .borrow()
            .iter()
            .map(|e| (e.kind, e.value.clone(), e.pending))
            .collect()
    }
    /// Whether an event of `kind` arrived.
    pub fn has(&self, kind: EventKind) -> bool {
        self.0.borrow().iter().any(|e| e.kind == kind)
    }
    /// The last event.
    pub fn last(&self) -> Option<DocEvent> {
        self.0.borrow().last().cloned()
    }
    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

/// Records every asset event of one subscription.
#[derive(Clone, Default)]
pub struct AssetRecorder(pub Rc<RefCell<Vec<AssetEvent>>>);

impl AssetRecorder {
    /// Subscribes a new recorder to `bucket` on `engine`.
    pub fn on(engine: &Engine, bucket: &str) -> AssetRecorder {
        let r = AssetRecorder::default();
        let events = r.0.clone();
        engine.assets_subscribe(
            bucket,
            Rc::new(move |e: &AssetEvent| events.borrow_mut().push(e.clone())),
        );
        r
    }
    /// The last event.
    pub fn last(&self) -> Option<AssetEvent> {
        self.0.borrow().last().cloned()
    }
    /// Number of events.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// Requests for `path_part` the browser actually made (Resource Timing), a check that does
/// not rely on the engine's own counters.
pub fn resource_requests(path_part: &str) -> usize {
    let Some(perf) = web_sys::window().and_then(|w| w.performance()) else {
        return 0;
    };
    // The default buffer keeps 250 entries; a test page makes more than that.
    if let Ok(f) = js_sys::Reflect::get(&perf, &"setResourceTimingBufferSize".into()) {
        if let Ok(f) = f.dyn_into::<js_sys::Function>() {
            let _ = f.call1(&perf, &100_000.into());
        }
    }
    perf.get_entries_by_type("resource")
        .iter()
        .filter(|e| {
            js_sys::Reflect::get(e, &"name".into())
                .ok()
                .and_then(|n| n.as_string())
                .map(|n| n.contains(path_part))
                .unwrap_or(false)
        })
        .count()
}

/// Where [`spawn_set`] leaves the outcome of its `doc_set` once it settles.
pub type SetResult = Rc<RefCell<Option<Result<DocSnapshot, monodit_core::Error>>>>;

/// Starts `engine.doc_set(b, value)` without awaiting it (it may stay pending for long:
/// offline, retrying) and returns where its outcome lands.
pub fn spawn_set(engine: &Rc<Engine>, b: &BucketRef, value: serde_json::Value) -> SetResult {
    let result: SetResult = Rc::new(RefCell::new(None));
    let (engine, b, r) = (engine.clone(), b.clone(), result.clone());
    wasm_bindgen_futures::spawn_local(async move {
        *r.borrow_mut() = Some(engine.doc_set(&b, value).await);
    });
    result
}
