//! Buckets, instances and seed 000's deletion semantics.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn list_shows_contract_usage_and_connected_widgets() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let a = s.register(&t, "note-a", notes_manifest(), json!({})).await;
    assert_eq!(a.ok()["buckets"]["primary"], "note-a");
    let b = s
        .register(
            &t,
            "note-b",
            notes_manifest(),
            json!({"storageNamespace": "note-a"}),
        )
        .await;
    assert_eq!(b.ok()["buckets"]["primary"], "note-a");
    s.call(
        Method::PUT,
        "/v1/instances/theme-1",
        Some(&t),
        Some(json!({"kind": "theme", "manifest": notes_manifest(), "config": {"storageNamespace": "note-a"}})),
    )
    .await
    .ok();
    s.put_doc(&t, "note-a", json!({"text": "shared"}))
        .await
        .ok();

    let list = s.get("/v1/buckets", &t).await;
    let buckets = list.ok().as_array().unwrap();
    assert_eq!(buckets.len(), 1);
    let bk = &buckets[0];
    assert_eq!(bk["backend"], "d1-json");
    assert_eq!(bk["schemaId"], "notes.plaintext");
    assert_eq!(bk["schemaVersion"], 1);
    assert_eq!(bk["bytes"], 17);
    let inst = bk["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2, "themes are not in topology: {inst:?}");
    assert_eq!(inst[0]["instanceId"], "note-a");
    assert_eq!(inst[0]["isolated"], true);
    assert_eq!(inst[1]["instanceId"], "note-b");
    assert_eq!(inst[1]["isolated"], false);

    let all = s.get("/v1/instances", &t).await;
    assert_eq!(all.ok().as_array().unwrap().len(), 3);
    s.call(Method::DELETE, "/v1/instances/theme-1", Some(&t), None)
        .await
        .ok();
    s.call(Method::DELETE, "/v1/instances/theme-1", Some(&t), None)
        .await
        .expect_err("NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_document_bucket_removes_it_refunds_and_disconnects() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.put_doc(&t, "team", json!({"text": "x"})).await.ok();
    s.register(
        &t,
        "w1",
        notes_manifest(),
        json!({"storageNamespace": "team"}),
    )
    .await
    .ok();
    let used = s.used(&t).await;
    assert!(used > 0);
    let del = s
        .call(Method::DELETE, "/v1/buckets/d1-json/team", Some(&t), None)
        .await;
    let d = del.ok();
    assert_eq!(d["refundedBytes"], used);
    assert_eq!(d["disconnectedInstances"], json!(["w1"]));
    s.get("/v1/documents/team", &t)
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(s.used(&t).await, 0);
    let inst = s.get("/v1/instances", &t).await;
    let w1 = &inst.ok()[0];
    assert!(
        w1["config"].get("storageNamespace").is_none(),
        "config key cleared: {w1}"
    );
    assert_eq!(
        w1["buckets"]["primary"], "w1",
        "back on its isolated bucket"
    );
    s.call(Method::DELETE, "/v1/buckets/d1-json/team", Some(&t), None)
        .await
        .expect_err("NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn relinking_to_an_incompatible_bucket_is_refused() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.call(
        Method::PUT,
        "/v1/documents/todo",
        Some(&t),
        Some(json!({"value": [], "schemaId": "todo.list", "schemaVersion": 1})),
    )
    .await
    .ok();
    s.register(&t, "n1", notes_manifest(), json!({})).await.ok();
    let r = s
        .register(
            &t,
            "n1",
            notes_manifest(),
            json!({"storageNamespace": "todo"}),
        )
        .await;
    r.expect_err("INCOMPATIBLE_BUCKET");
    // The failed re-link changed nothing.
    let inst = s.get("/v1/instances", &t).await;
    assert_eq!(inst.ok()[0]["buckets"]["primary"], "n1");
    s.stop().await;
}

#[tokio::test]
async fn invalid_manifests_and_ids_are_reported() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let bad = json!({"id": "w", "widgetType": "basic", "storage": {"bindings": [{"key": "k", "backend": "nope", "schemaId": "", "schemaVersion": 0}]}});
    let r = s.register(&t, "i1", bad, json!({})).await;
    r.expect_err("INVALID_MANIFEST");
    assert!(
        r.body["detail"].as_array().unwrap().len() >= 2,
        "every problem listed: {}",
        r.body
    );
    s.register(&t, "bad id!", notes_manifest(), json!({}))
        .await
        .expect_err("INVALID_ARGUMENT");
    let sqlish = json!({"id": "forms", "storage": {"submissions": {"indexes": ["x'); DROP TABLE users;--"]}}});
    s.register(&t, "i2", sqlish, json!({}))
        .await
        .expect_err("INVALID_MANIFEST");
    s.call(Method::DELETE, "/v1/buckets/s3/x", Some(&t), None)
        .await
        .expect_err("INVALID_ARGUMENT");
    s.call(
        Method::DELETE,
        "/v1/buckets/d1-json/missing",
        Some(&t),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    s.stop().await;
}

/// Seed 000's manifests have no widget id; copied verbatim they register, and their buckets
/// resolve as the seed says. A collection declaration without an id is refused by path.
#[tokio::test]
async fn seed_manifests_without_an_id_register() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let seed = json!({
        "widgetType": "dynamic",
        "storage": {"bindings": [{
            "key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets",
            "schemaVersion": 1, "configKey": "assetBucketId", "shareable": true
        }]}
    });
    let r = s.register(&t, "g-1", seed, json!({})).await;
    assert_eq!(r.ok()["widgetId"], "");
    assert_eq!(r.body["buckets"]["assets"], "g-1");
    let r = s
        .register(
            &t,
            "f-1",
            json!({"storage": {"submissions": {"indexes": ["formId"]}}}),
            json!({}),
        )
        .await;
    r.expect_err("INVALID_MANIFEST");
    assert_eq!(r.body["detail"][0]["path"], "$.id");
    s.stop().await;
}
