//! What one user may create (core `limits`): instance size and count, plugin ids with
//! declarations, index declarations, and the physical indexes the server builds for them.

use crate::support::*;
use monodit_core::limits::{MAX_CONFIG_BYTES, MAX_INSTANCES_PER_USER, MAX_MANIFEST_BYTES};
use reqwest::Method;
use serde_json::{json, Value};

/// A config whose compact JSON is exactly `bytes` long.
fn config_of(bytes: usize) -> Value {
    let v = json!({"k": "x".repeat(bytes - 8)});
    assert_eq!(serde_json::to_string(&v).unwrap().len(), bytes);
    v
}

/// Seed 000's notes manifest padded (an extra `description`) to exactly `bytes` of JSON.
fn manifest_of(bytes: usize) -> Value {
    let mut m = notes_manifest();
    m["description"] = json!("");
    let base = serde_json::to_string(&m).unwrap().len();
    m["description"] = json!("x".repeat(bytes - base));
    assert_eq!(serde_json::to_string(&m).unwrap().len(), bytes);
    m
}

async fn instance_count(s: &Srv, t: &str) -> usize {
    s.get("/v1/instances", t)
        .await
        .ok()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn instance_config_is_capped_and_nothing_oversized_is_stored() {
    let s = Srv::start().await;
    let free = s.user("free", 0).await;
    // What the campaign did: 5 MiB configs on the Free plan, outside the quota.
    s.register(&free, "big", notes_manifest(), config_of(5 * 1024 * 1024))
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    let r = s
        .register(
            &free,
            "w",
            notes_manifest(),
            config_of(MAX_CONFIG_BYTES + 1),
        )
        .await;
    r.expect_err("PAYLOAD_TOO_LARGE");
    assert_eq!(r.body["detail"]["limit"], "config");
    assert_eq!(instance_count(&s, &free).await, 0);
    // Exactly at the limit is accepted and reads back whole.
    s.register(&free, "w", notes_manifest(), config_of(MAX_CONFIG_BYTES))
        .await
        .ok();
    let listed = s.get("/v1/instances", &free).await.ok().clone();
    assert_eq!(
        serde_json::to_string(&listed[0]["config"]).unwrap().len(),
        MAX_CONFIG_BYTES
    );
    // An oversized update leaves the stored instance as it was.
    s.register(
        &free,
        "w",
        notes_manifest(),
        config_of(MAX_CONFIG_BYTES + 1),
    )
    .await
    .expect_err("PAYLOAD_TOO_LARGE");
    let again = s.get("/v1/instances", &free).await.ok().clone();
    assert_eq!(again, listed);
    s.stop().await;
}

#[tokio::test]
async fn instance_manifest_is_capped() {
    let s = Srv::start().await;
    let free = s.user("free", 0).await;
    let r = s
        .register(&free, "w", manifest_of(MAX_MANIFEST_BYTES + 1), json!({}))
        .await;
    r.expect_err("PAYLOAD_TOO_LARGE");
    assert_eq!(r.body["detail"]["limit"], "manifest");
    assert_eq!(instance_count(&s, &free).await, 0);
    s.register(&free, "w", manifest_of(MAX_MANIFEST_BYTES), json!({}))
        .await
        .ok();
    assert_eq!(instance_count(&s, &free).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn registered_instances_per_user_are_capped() {
    let s = Srv::start().await;
    let free = s.user("free", 0).await;
    for i in 0..MAX_INSTANCES_PER_USER {
        s.register(&free, &format!("w-{i}"), notes_manifest(), json!({}))
            .await
            .ok();
    }
    let r = s
        .register(&free, "one-more", notes_manifest(), json!({}))
        .await;
    r.expect_err("LIMIT_EXCEEDED");
    assert_eq!(r.body["detail"]["max"], MAX_INSTANCES_PER_USER);
    assert_eq!(instance_count(&s, &free).await, MAX_INSTANCES_PER_USER);
    // Re-registering one already held is not a new instance.
    s.register(
        &free,
        "w-0",
        notes_manifest(),
        json!({"storageNamespace": "team"}),
    )
    .await
    .ok();
    // Another user is not affected by this one's count.
    let other = s.user("free", 0).await;
    s.register(&other, "one-more", notes_manifest(), json!({}))
        .await
        .ok();
    // Removing one makes room for one.
    s.call(Method::DELETE, "/v1/instances/w-1", Some(&free), None)
        .await
        .ok();
    s.register(&free, "one-more", notes_manifest(), json!({}))
        .await
        .ok();
    s.register(&free, "two-more", notes_manifest(), json!({}))
        .await
        .expect_err("LIMIT_EXCEEDED");
    s.stop().await;
}
