//! Buckets, instances and seed 000's deletion semantics.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn deleting_an_asset_bucket_deletes_every_object_and_refunds() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    s.register(
        &t,
        "g1",
        gallery_manifest(),
        json!({"assetBucketId": "photos"}),
    )
    .await
    .ok();
    let mut urls = Vec::new();
    for i in 0..3 {
        let up = s
            .upload(&t, "photos", &format!("{i}.png"), "image/png", vec![i; 100])
            .await;
        urls.push(up.ok()["url"].as_str().unwrap().to_string());
    }
    s.upload(&t, "keep", "k.png", "image/png", vec![9; 10])
        .await
        .ok();
    assert_eq!(s.used(&t).await, 310);
    let del = s
        .call(
            Method::DELETE,
            "/v1/buckets/r2-assets/photos",
            Some(&t),
            None,
        )
        .await;
    let d = del.ok();
    assert_eq!(d["refundedBytes"], 300);
    assert_eq!(d["deletedObjects"], 3);
    assert_eq!(d["disconnectedInstances"], json!(["g1"]));
    assert_eq!(s.used(&t).await, 10);
    for u in urls {
        s.send(s.http.get(&u)).await.expect_err("NOT_FOUND");
    }
    let count = std::fs::read_dir(s.objects_dir().join("assets"))
        .unwrap()
        .count();
    assert_eq!(count, 1, "only the other bucket's object remains");
    assert!(s.get("/v1/assets/photos", &t).await.ok()["assets"]
        .as_array()
        .unwrap()
        .is_empty());
    let inst = s.get("/v1/instances", &t).await;
    assert_eq!(inst.ok()[0]["buckets"]["assets"], "g1");
    assert!(inst.body[0]["config"].get("assetBucketId").is_none());
    s.stop().await;
}
