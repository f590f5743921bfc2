//! Asset lists through the sync engine against the real server in real Chromium: upload,
//! list, delete and re-check, and the plan gate on uploads.
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::sync::Engine;
use monodit_core::api::Plan;
use monodit_core::ErrorCode;
use wasm_bindgen_test::*;

/// A 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn png_blob() -> web_sys::Blob {
    let bytes = js_sys::Uint8Array::from(PNG);
    let parts = js_sys::Array::of1(&bytes);
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("image/png");
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).unwrap()
}

#[wasm_bindgen_test]
async fn assets_upload_list_delete_and_recheck() {
    let (api, _) = new_user(Plan::Pro).await;
    let id = unique("gallery");
    let b = asset_bucket(&id);
    let engine = Engine::open(api.clone()).await.unwrap();
    assert!(engine.assets_list(&b).await.unwrap().is_empty());
    let w = AssetRecorder::on(&engine, &id);

    let progress = std::rc::Rc::new(std::cell::RefCell::new(Vec::<(f64, f64)>::new()));
    let p = progress.clone();
    let info = engine
        .assets_upload(
            &b,
            png_blob(),
            "dot.png".into(),
            std::rc::Rc::new(move |l, t| p.borrow_mut().push((l, t))),
        )
        .await
        .unwrap();
    assert_eq!(info.size, PNG.len() as u64);
    assert_eq!(info.name, "dot.png");
    let last = w.last().expect("subscribers hear about the upload");
    assert_eq!(last.assets.len(), 1);
    assert_eq!(last.assets[0].object_key, info.object_key);
    let (loaded, total) = *progress.borrow().last().expect("upload progress reported");
    assert_eq!((loaded, total), (PNG.len() as f64, PNG.len() as f64));

    // Another client uploads: the batched re-check (asset change counter) picks it up.
    let other = api
        .upload_asset(&id, &b.contract, &png_blob(), "other.png", |_, _| {})
        .await
        .unwrap();
    let seen = w.len();
    engine.recheck();
    wait_until("asset list re-checked", || w.len() > seen).await;
    let keys: Vec<_> = w
        .last()
        .unwrap()
        .assets
        .iter()
        .map(|a| a.object_key.clone())
        .collect();
    assert_eq!(
        keys,
        vec![info.object_key.clone(), other.object_key.clone()]
    );

    engine.assets_delete(&b, &info.object_key).await.unwrap();
    let list = engine.assets_list(&b).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].object_key, other.object_key);
    assert_eq!(w.last().unwrap().assets.len(), 1);
    engine.close();

    // A new page lists from the IndexedDB mirror (no list request), and the batched check
    // confirms it is current.
    let list_url = format!("/v1/assets/{id}");
    let lists_before = resource_requests(&list_url);
    assert!(
        lists_before > 0,
        "the probe sees the first page's list requests"
    );
    let engine = Engine::open(api.clone()).await.unwrap();
    let meta_before = api.counters().meta.get();
    let list = engine.assets_list(&b).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].object_key, other.object_key);
    wait_until("the background check", || {
        api.counters().meta.get() > meta_before
    })
    .await;
    sleep(200).await;
    assert_eq!(
        resource_requests(&list_url),
        lists_before,
        "unchanged list not fetched again"
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn asset_upload_on_free_plan_is_plan_required() {
    let (api, _) = new_user(Plan::Free).await;
    let engine = Engine::open(api).await.unwrap();
    let err = engine
        .assets_upload(
            &asset_bucket(&unique("g")),
            png_blob(),
            "a.png".into(),
            std::rc::Rc::new(|_, _| {}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PlanRequired);
    engine.close();
}
