//! Uploads against the real server in real Chromium: a lost answer is retried with the same
//! idempotency key and stored once; large files go up in parts (as slices of the File), a
//! lost part answer resumes at the first missing part, and an upload interrupted by a
//! "reload" (the engine dropped, a new one opened on the same IndexedDB) resumes when the
//! same file is uploaded again; progress never goes backwards; downloaded bytes match; the
//! mirror's schema upgrade (version 2 adds the uploads store) keeps a version 1 outbox.
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::http::Api;
use monodit_bridge::mirror::{db_name, Mirror, UploadRecord, STORE_UPLOADS};
use monodit_bridge::sync::{BucketRef, Engine};
use monodit_core::api::{Plan, UPLOAD_PART_SIZE};
use monodit_core::ErrorCode;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

/// `len` bytes that differ per position and per `seed` (so parts and files are distinct).
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A `File` as a file picker hands it over: name, type and modification time.
fn file(data: &[u8], name: &str, last_modified: f64) -> web_sys::Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(data));
    let opts = js_sys::Object::new();
    js_sys::Reflect::set(&opts, &"type".into(), &"application/octet-stream".into()).unwrap();
    js_sys::Reflect::set(&opts, &"lastModified".into(), &last_modified.into()).unwrap();
    let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"File".into())
        .unwrap()
        .unchecked_into();
    let args = js_sys::Array::of3(&parts, &name.into(), &opts);
    js_sys::Reflect::construct(&ctor, &args)
        .unwrap()
        .unchecked_into()
}

/// Every `(loaded, total)` progress report, in order.
#[derive(Clone, Default)]
struct ProgressLog(Rc<RefCell<Vec<(f64, f64)>>>);

impl ProgressLog {
    fn callback(&self) -> Rc<dyn Fn(f64, f64)> {
        let log = self.0.clone();
        Rc::new(move |l, t| log.borrow_mut().push((l, t)))
    }
    fn loaded(&self) -> Vec<f64> {
        self.0.borrow().iter().map(|(l, _)| *l).collect()
    }
    /// Never backwards, ends at `total`, every report against `total`.
    fn assert_monotone_to(&self, total: f64) {
        let loaded = self.loaded();
        assert!(!loaded.is_empty(), "progress was reported");
        assert!(
            loaded.windows(2).all(|w| w[0] <= w[1]),
            "progress went backwards: {loaded:?}"
        );
        assert_eq!(*loaded.last().unwrap(), total);
        assert!(self.0.borrow().iter().all(|(_, t)| *t == total));
    }
}

/// The bytes served at an asset's signed URL.
async fn download(url: &str) -> Vec<u8> {
    let resp = gloo_net::http::Request::get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.binary().await.unwrap()
}

/// Bytes the server charges for `bucket`.
async fn charged(api: &Api, bucket: &str) -> u64 {
    let usage = api.usage().await.unwrap();
    usage
        .buckets
        .iter()
        .find(|b| b.bucket_id == bucket)
        .map(|b| b.bytes)
        .unwrap_or(0)
}

/// Completed part PUTs of `upload_id` the browser made (Resource Timing), by part number.
fn parts_requested(upload_id: &str) -> Vec<u32> {
    let marker = format!("/v1/uploads/{upload_id}/parts/");
    let Some(perf) = web_sys::window().and_then(|w| w.performance()) else {
        return Vec::new();
    };
    // Counts only with the buffer large enough (see `resource_requests`).
    let _ = resource_requests("/v1/uploads/");
    let mut out: Vec<u32> = perf
        .get_entries_by_type("resource")
        .iter()
        .filter_map(|e| {
            let name = js_sys::Reflect::get(&e, &"name".into()).ok()?.as_string()?;
            let (_, n) = name.split_once(&marker)?;
            n.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

async fn assert_one_asset(api: &Api, b: &BucketRef, name: &str, data: &[u8]) {
    let list = api.assets(&b.bucket_id).await.unwrap();
    assert_eq!(list.assets.len(), 1, "stored once: {:?}", list.assets);
    let asset = &list.assets[0];
    assert_eq!((asset.name.as_str(), asset.size), (name, data.len() as u64));
    assert!(
        download(&asset.url).await == data,
        "downloaded bytes differ"
    );
    assert_eq!(charged(api, &b.bucket_id).await, data.len() as u64);
}

#[wasm_bindgen_test]
async fn a_lost_upload_answer_is_retried_with_its_key_and_stored_once() {
    let (api, _) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    let b = asset_bucket(&unique("lost"));
    let data = bytes(50_000, 1);
    // The server stores the first two attempts' outcome (one asset) but answers neither.
    api.dev_set_upload_faults(2).await.unwrap();
    let progress = ProgressLog::default();
    let info = engine
        .assets_upload(
            &b,
            file(&data, "a.bin", 1.0),
            "a.bin".into(),
            progress.callback(),
        )
        .await
        .expect("the call resolves once an attempt is answered");
    let list = api.assets(&b.bucket_id).await.unwrap();
    assert_eq!(list.assets.len(), 1);
    assert_eq!(list.assets[0].object_key, info.object_key);
    assert_one_asset(&api, &b, "a.bin", &data).await;
    progress.assert_monotone_to(data.len() as f64);
    engine.close();
}

#[wasm_bindgen_test]
async fn a_large_upload_goes_in_parts_and_a_lost_part_answer_resumes_at_the_first_missing_part() {
    let (api, _) = new_user(Plan::Pro).await;
    // Default threshold (16 MiB): two full parts and a short third are above it.
    let engine = Engine::open(api.clone()).await.unwrap();
    let b = asset_bucket(&unique("parts"));
    let part = UPLOAD_PART_SIZE as usize;
    let data = bytes(2 * part + 1000, 2);
    assert!(data.len() as f64 > monodit_bridge::uploads::DEFAULT_RESUMABLE_UPLOAD_BYTES);
    // Part 1 is stored but its answer is lost: the session, read again, says so.
    api.dev_set_upload_faults(1).await.unwrap();
    let progress = ProgressLog::default();
    let counters = engine.api().counters();
    let before = counters.upload_parts.get();
    let info = engine
        .assets_upload(
            &b,
            file(&data, "big.bin", 2.0),
            "big.bin".into(),
            progress.callback(),
        )
        .await
        .expect("resumable upload");
    assert_eq!(
        counters.upload_parts.get() - before,
        3,
        "three parts, none sent twice"
    );
    assert_eq!(info.size, data.len() as u64);
    assert_one_asset(&api, &b, "big.bin", &data).await;
    progress.assert_monotone_to(data.len() as f64);
    // No single-shot request was made for it.
    assert_eq!(
        resource_requests(&format!("/v1/assets/{}?", b.bucket_id)),
        0
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn an_upload_interrupted_by_a_reload_resumes_at_the_first_missing_part() {
    let (api, user, token) = new_user_with_token(Plan::Pro).await;
    let b = asset_bucket(&unique("reload"));
    let part = UPLOAD_PART_SIZE as usize;
    let data = bytes(2 * part + 4321, 3);
    let (name, modified) = ("film.bin", 1_700_000_000_000.0);
    // Each page has its own client (and request counters).
    let small_threshold =
        || Api::new(server(), &token).with_resumable_upload_bytes(1024.0 * 1024.0);

    // First page: stopped once part 2 is on its way (part 1 answered, part 3 never sent).
    let first = Engine::open(small_threshold()).await.unwrap();
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let stop_tx = RefCell::new(Some(stop_tx));
    let on_progress: Rc<dyn Fn(f64, f64)> = Rc::new(move |loaded, _| {
        if loaded > part as f64 {
            if let Some(tx) = stop_tx.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    });
    {
        let upload = first.assets_upload(&b, file(&data, name, modified), name.into(), on_progress);
        futures::pin_mut!(upload);
        match futures::future::select(upload, stop_rx).await {
            futures::future::Either::Right(_) => {}
            futures::future::Either::Left((r, _)) => panic!("finished before the stop: {r:?}"),
        }
    } // dropped: part 2's request is aborted
    first.close();
    sleep(500).await; // the server settles the aborted part

    // What the page left in IndexedDB names the session; the server has part 1, not part 3.
    let mirror = Mirror::open(&user).await;
    let fp = UploadRecord::fingerprint(
        &b.bucket_id,
        name,
        data.len() as f64,
        modified,
        "application/octet-stream",
    );
    let rec = mirror
        .get_upload(&fp)
        .await
        .expect("pending upload recorded");
    mirror.close();
    let upload_id = rec.upload_id.clone().expect("session id recorded");
    let session = api.upload_session(&upload_id).await.unwrap();
    let stored: Vec<u32> = session.parts.iter().map(|p| p.part_number).collect();
    assert!(stored.contains(&1) && !stored.contains(&3), "{stored:?}");
    let stored_bytes: f64 = session.parts.iter().map(|p| p.size as f64).sum();
    let requested_before = parts_requested(&upload_id);

    // The reloaded page: the same file picked again (a new File object) resumes.
    let second = Engine::open(small_threshold()).await.unwrap();
    let progress = ProgressLog::default();
    let again = file(&data, name, modified);
    second
        .assets_upload(&b, again, name.into(), progress.callback())
        .await
        .expect("resumed upload");
    let sent = second.api().counters().upload_parts.get();
    assert_eq!(
        sent as usize,
        3 - stored.len(),
        "only the missing parts were sent"
    );
    let mut resent = parts_requested(&upload_id);
    for n in &requested_before {
        let i = resent.iter().position(|x| x == n).unwrap();
        resent.remove(i);
    }
    let missing: Vec<u32> = (1..=3).filter(|n| !stored.contains(n)).collect();
    assert_eq!(resent, missing, "sent after the reload");
    // Progress started at the bytes already stored and never went back.
    assert!(
        progress.loaded()[0] >= stored_bytes,
        "{:?}",
        progress.loaded()
    );
    progress.assert_monotone_to(data.len() as f64);
    assert_one_asset(&api, &b, name, &data).await;
    // Completed: the record is gone, so a later upload of the file is a new asset.
    assert!(second.is_persistent());
    second.close();
    let mirror = Mirror::open(&user).await;
    assert_eq!(mirror.get_upload(&fp).await, None);
    mirror.close();
}

#[wasm_bindgen_test]
async fn a_stale_or_corrupt_upload_record_starts_a_new_upload() {
    let (api, user, token) = new_user_with_token(Plan::Pro).await;
    let data = bytes(3 * 1024 * 1024, 5);
    let fp = |b: &BucketRef, name: &str| {
        UploadRecord::fingerprint(
            &b.bucket_id,
            name,
            data.len() as f64,
            5.0,
            "application/octet-stream",
        )
    };
    let stale = asset_bucket(&unique("stale"));
    let corrupt = asset_bucket(&unique("corrupt"));
    // One record names a session the server never had (expired and swept, say); the other
    // is not a record at all.
    let mirror = Mirror::open(&user).await;
    mirror
        .put_upload(&UploadRecord {
            fingerprint: fp(&stale, "s.bin"),
            idempotency_key: "stale-key".into(),
            upload_id: Some("0123456789abcdef0123456789abcdef".into()),
            bucket_id: stale.bucket_id.clone(),
            name: "s.bin".into(),
            size: data.len() as f64,
            last_modified: 5.0,
            content_type: "application/octet-stream".into(),
            created_at: 0.0,
        })
        .await
        .unwrap();
    mirror.close();
    let db = rexie::Rexie::builder(&db_name(&user))
        .build()
        .await
        .unwrap();
    let tx = db
        .transaction(&[STORE_UPLOADS], rexie::TransactionMode::ReadWrite)
        .unwrap();
    let junk = js_sys::Object::new();
    js_sys::Reflect::set(&junk, &"fingerprint".into(), &fp(&corrupt, "c.bin").into()).unwrap();
    js_sys::Reflect::set(&junk, &"uploadId".into(), &42.into()).unwrap();
    tx.store(STORE_UPLOADS)
        .unwrap()
        .put(&junk, None)
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    let engine = Engine::open(Api::new(server(), &token).with_resumable_upload_bytes(1e6))
        .await
        .unwrap();
    for (b, name) in [(&stale, "s.bin"), (&corrupt, "c.bin")] {
        engine
            .assets_upload(b, file(&data, name, 5.0), name.into(), Rc::new(|_, _| {}))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_one_asset(&api, b, name, &data).await;
    }
    engine.close();
    let mirror = Mirror::open(&user).await;
    assert_eq!(mirror.get_upload(&fp(&stale, "s.bin")).await, None);
    assert_eq!(mirror.get_upload(&fp(&corrupt, "c.bin")).await, None);
    mirror.close();
}

#[wasm_bindgen_test]
async fn a_resumable_upload_over_the_quota_is_refused_before_any_part_is_sent() {
    let (api, _) = new_user(Plan::Pro).await;
    api.dev_set_plan_limit(Plan::Pro, 0, Some(1_000_000))
        .await
        .unwrap();
    let engine = Engine::open(api.clone().with_resumable_upload_bytes(0.0))
        .await
        .unwrap();
    let b = asset_bucket(&unique("quota"));
    let data = bytes(2_000_000, 4);
    let err = engine
        .assets_upload(
            &b,
            file(&data, "q.bin", 4.0),
            "q.bin".into(),
            Rc::new(|_, _| {}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    assert_eq!(engine.api().counters().upload_parts.get(), 0);
    assert!(api.assets(&b.bucket_id).await.unwrap().assets.is_empty());
    assert_eq!(api.usage().await.unwrap().used_bytes, 0, "nothing reserved");
    engine.close();
}

#[wasm_bindgen_test]
async fn a_version_1_mirror_is_upgraded_in_place_and_its_queued_write_still_goes_out() {
    use monodit_bridge::mirror::{OutboxRecord, STORE_ASSETS, STORE_CACHE, STORE_DOCUMENTS};
    use monodit_bridge::mirror::{DB_VERSION, STORE_OUTBOX};
    use rexie::{Index, ObjectStore, Rexie, TransactionMode};
    assert_eq!(DB_VERSION, 2);
    let (api, user) = new_user(Plan::Pro).await;
    let bucket = unique("v1");
    // The schema as version 1 created it, with a write still queued (a tab closed offline).
    let db = Rexie::builder(&db_name(&user))
        .version(1)
        .add_object_store(ObjectStore::new(STORE_DOCUMENTS).key_path("bucketId"))
        .add_object_store(ObjectStore::new(STORE_OUTBOX).key_path("mutationId"))
        .add_object_store(ObjectStore::new(STORE_ASSETS).key_path("bucketId"))
        .add_object_store(
            ObjectStore::new(STORE_CACHE)
                .key_path_array(["instanceId", "key"])
                .add_index(Index::new("byInstance", "instanceId")),
        )
        .build()
        .await
        .unwrap();
    let queued = OutboxRecord {
        mutation_id: unique("m"),
        bucket_id: bucket.clone(),
        seq: 1.0,
        value: serde_json::json!({"text": "written before the upgrade"}),
        contract: notes(),
        created_at: 1.0,
        base_version: None,
        condition: Default::default(),
        after: None,
        sent_as: None,
    };
    let tx = db
        .transaction(&[STORE_OUTBOX], TransactionMode::ReadWrite)
        .unwrap();
    // Exactly a version-1 record: without the fields added since.
    let mut v1 = serde_json::to_value(&queued).unwrap();
    let fields = v1.as_object_mut().unwrap();
    fields.remove("baseVersion");
    fields.remove("condition");
    fields.remove("after");
    let rec = serde::Serialize::serialize(&v1, &serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap();
    tx.store(STORE_OUTBOX)
        .unwrap()
        .put(&rec, None)
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    let engine = Engine::open(api.clone()).await.unwrap();
    assert!(engine.is_persistent(), "the upgrade opened IndexedDB");
    let mut meta = None;
    for _ in 0..100 {
        if let Ok(m) = api.document_meta(&bucket).await {
            meta = Some(m);
            break;
        }
        sleep(100).await;
    }
    assert_eq!(
        meta.expect("the queued write reached the server").version,
        1
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn host_create_checks_resumable_upload_bytes() {
    use monodit_bridge::host::Host;
    let (_, _, token) = new_user_with_token(Plan::Pro).await;
    let opts = js_sys::Object::new();
    js_sys::Reflect::set(&opts, &"backendUrl".into(), &server().into()).unwrap();
    js_sys::Reflect::set(&opts, &"token".into(), &token.as_str().into()).unwrap();
    js_sys::Reflect::set(&opts, &"resumableUploadBytes".into(), &(-1.0).into()).unwrap();
    let err = wasm_bindgen_futures::JsFuture::from(Host::create(opts.clone().into()))
        .await
        .unwrap_err();
    let code = js_sys::Reflect::get(&err, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("INVALID_ARGUMENT"));
    js_sys::Reflect::set(&opts, &"resumableUploadBytes".into(), &JsValue::from(0)).unwrap();
    let host = wasm_bindgen_futures::JsFuture::from(Host::create(opts.into()))
        .await
        .expect("0 is a valid threshold");
    let close: js_sys::Function = js_sys::Reflect::get(&host, &"close".into())
        .unwrap()
        .unchecked_into();
    close.call0(&host).unwrap();
}
