//! Plans and quotas: gating, atomic enforcement, exact refunds.

use crate::support::quota::*;
use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn free_plan_is_gated_off_storage_but_sees_its_account() {
    let s = Srv::start().await;
    let t = s.user("free", 0).await;
    let me = s.get("/v1/me", &t).await;
    assert_eq!(me.ok()["plan"], "free");
    assert_eq!(me.body["limitBytes"], 100_000_000u64);
    s.get("/v1/usage", &t).await.ok();
    s.put_doc(&t, "x", json!(1))
        .await
        .expect_err("PLAN_REQUIRED");
    s.get("/v1/documents/x", &t)
        .await
        .expect_err("PLAN_REQUIRED");
    s.call(Method::POST, "/v1/meta", Some(&t), Some(json!({})))
        .await
        .expect_err("PLAN_REQUIRED");
    s.upload(&t, "b", "a.png", "image/png", vec![1])
        .await
        .expect_err("PLAN_REQUIRED");
    s.get("/v1/assets/b", &t).await.expect_err("PLAN_REQUIRED");
    s.get("/v1/buckets", &t).await.expect_err("PLAN_REQUIRED");
    s.coll(&t, "forms", "submissions", "get", json!({"id": "a"}))
        .await
        .expect_err("PLAN_REQUIRED");
    // Upgrading opens storage.
    let up = s
        .call(
            Method::PUT,
            "/v1/dev/plan",
            Some(&t),
            Some(json!({"plan": "pro", "addons": 2})),
        )
        .await;
    assert_eq!(up.ok()["limitBytes"], 15 * GB);
    s.put_doc(&t, "x", json!(1)).await.ok();
    // Downgrading closes it again at once (no stale authorisation).
    s.call(
        Method::PUT,
        "/v1/dev/plan",
        Some(&t),
        Some(json!({"plan": "free"})),
    )
    .await
    .ok();
    s.get("/v1/documents/x", &t)
        .await
        .expect_err("PLAN_REQUIRED");
    s.stop().await;
}

#[tokio::test]
async fn addons_add_five_gigabytes_each() {
    let s = Srv::start().await;
    let t = s.user("pro", 3).await;
    assert_eq!(s.get("/v1/me", &t).await.ok()["limitBytes"], 20 * GB);
    s.stop().await;
}

#[tokio::test]
async fn refunds_are_exact_on_overwrite_and_delete() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.put_doc(&t, "d", json!("a".repeat(100))).await.ok();
    assert_eq!(s.used(&t).await, 102);
    s.put_doc(&t, "d", json!("a".repeat(40))).await.ok();
    assert_eq!(s.used(&t).await, 42);
    let up = s
        .upload(&t, "p", "a.bin", "application/octet-stream", vec![0; 1000])
        .await;
    let key = up.ok()["objectKey"].as_str().unwrap().to_string();
    assert_eq!(s.used(&t).await, 1042);
    s.call(
        Method::DELETE,
        &format!("/v1/assets/p/{key}"),
        Some(&t),
        None,
    )
    .await
    .ok();
    assert_eq!(s.used(&t).await, 42);
    let del = s
        .call(Method::DELETE, "/v1/buckets/d1-json/d", Some(&t), None)
        .await;
    assert_eq!(del.ok()["refundedBytes"], 42);
    assert_eq!(s.used(&t).await, 0);
    let usage = s.get("/v1/usage", &t).await;
    assert_eq!(usage.ok()["usedBytes"], 0);
    assert_eq!(
        usage.body["buckets"].as_array().unwrap().len(),
        1,
        "the emptied asset bucket remains"
    );
    s.stop().await;
}

#[tokio::test]
async fn collection_items_count_and_refund_exactly() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.register(&t, "f", forms_manifest(), json!({})).await.ok();
    let put = |id: &str, data: serde_json::Value| {
        s.coll(
            &t,
            "forms",
            "submissions",
            "put",
            json!({"id": id, "data": data}),
        )
    };
    put("a", json!({"formId": "contact"})).await.ok();
    assert_eq!(s.used(&t).await, r#"{"formId":"contact"}"#.len() as u64);
    put("a", json!({"formId": "c"})).await.ok();
    assert_eq!(s.used(&t).await, r#"{"formId":"c"}"#.len() as u64);
    s.coll(
        &t,
        "forms",
        "submissions",
        "deleteMany",
        json!({"ids": ["a"]}),
    )
    .await
    .ok();
    assert_eq!(s.used(&t).await, 0);
    assert_eq!(s.get("/v1/usage", &t).await.ok()["collectionBytes"], 0);
    s.stop().await;
}

/// The dev-only limit override: lets browser and e2e tests reach the seed's QUOTA_EXCEEDED
/// with real uploads instead of 5 GB of data, and restores the plan's limit when cleared.
#[tokio::test]
async fn dev_limit_override_makes_quota_reachable_and_clears() {
    let s = Srv::start().await;
    let t = s.pro_with_limit(1000).await;
    assert_eq!(s.get("/v1/me", &t).await.ok()["limitBytes"], 1000);
    s.upload(&t, "g", "a.bin", "application/octet-stream", vec![7; 600])
        .await
        .ok();
    let r = s
        .upload(&t, "g", "b.bin", "application/octet-stream", vec![7; 600])
        .await;
    r.expect_err("QUOTA_EXCEEDED");
    assert_eq!(r.body["detail"]["limitBytes"], 1000);
    assert_eq!(s.used(&t).await, 600);
    // Clearing the override restores the plan's 5 GB.
    let up = s
        .call(
            Method::PUT,
            "/v1/dev/plan",
            Some(&t),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(up.ok()["limitBytes"], 5 * GB);
    s.upload(&t, "g", "b.bin", "application/octet-stream", vec![7; 600])
        .await
        .ok();
    s.stop().await;
}
