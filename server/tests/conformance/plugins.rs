//! Plugin ids are pinned to the source of the widget that holds them (core `plugins`).

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

const FORMS_SRC: &str = "https://widgets.example/forms/index.html";

async fn register_from(s: &Srv, t: &str, instance: &str, manifest: Value, source: &str) -> Resp {
    s.call(
        Method::PUT,
        &format!("/v1/instances/{instance}"),
        Some(t),
        Some(json!({"kind": "widget", "manifest": manifest, "config": {}, "source": source})),
    )
    .await
}

/// Registers `evil-1`, a bare manifest claiming the "forms" plugin id, served from `source`.
async fn claim_forms(s: &Srv, t: &str, source: &str) -> Resp {
    register_from(s, t, "evil-1", json!({"id": "forms"}), source).await
}

#[tokio::test]
async fn a_manifest_from_another_source_cannot_claim_a_held_plugin_id() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let info = register_from(&s, &t, "forms-1", forms_manifest(), FORMS_SRC).await;
    assert_eq!(info.ok()["source"], FORMS_SRC);
    // A second instance of the same widget (cache-busting query included) is fine.
    register_from(&s, &t, "forms-2", forms_manifest(), FORMS_SRC)
        .await
        .ok();
    // A widget from elsewhere claiming "forms" is refused, and says who holds it.
    let refused = claim_forms(&s, &t, "https://evil.example/x.html").await;
    refused.expect_err("PLUGIN_ID_TAKEN");
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["detail"]["pluginId"], "forms");
    assert_eq!(refused.body["detail"]["source"], FORMS_SRC);
    // ...and nothing of it was stored.
    let list = s.get("/v1/instances", &t).await;
    let ids: Vec<&str> = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["forms-1", "forms-2"]);
    // An existing instance cannot move itself to another source while others hold the id.
    register_from(
        &s,
        &t,
        "forms-2",
        forms_manifest(),
        "https://evil.example/x.html",
    )
    .await
    .expect_err("PLUGIN_ID_TAKEN");
    // Other users are unaffected: the pin is per user.
    let other = s.pro().await;
    claim_forms(&s, &other, "https://evil.example/x.html")
        .await
        .ok();
    s.stop().await;
}

#[tokio::test]
async fn registrations_without_a_source_keep_the_stored_one_and_cannot_take_a_pinned_id() {
    let s = Srv::start().await;
    let t = s.pro().await;
    register_from(&s, &t, "forms-1", forms_manifest(), FORMS_SRC)
        .await
        .ok();
    // An older host re-registers without a source: the stored source stays.
    let again = s.register(&t, "forms-1", forms_manifest(), json!({})).await;
    assert_eq!(again.ok()["source"], FORMS_SRC);
    // A new instance whose source is unknown cannot claim the pinned id either.
    s.register(&t, "forms-9", forms_manifest(), json!({}))
        .await
        .expect_err("PLUGIN_ID_TAKEN");
    claim_forms(&s, &t, "https://evil.example/")
        .await
        .expect_err("PLUGIN_ID_TAKEN");
    // Sources are bounded and printable.
    register_from(&s, &t, "forms-3", forms_manifest(), "a\nb")
        .await
        .expect_err("INVALID_ARGUMENT");
    register_from(&s, &t, "forms-3", forms_manifest(), &"a".repeat(3000))
        .await
        .expect_err("INVALID_ARGUMENT");
    // Once every instance holding it is gone, the id is free again.
    s.call(Method::DELETE, "/v1/instances/forms-1", Some(&t), None)
        .await
        .ok();
    claim_forms(&s, &t, "https://evil.example/").await.ok();
    s.stop().await;
}

/// A server whose Pro user has Forms (from [`FORMS_SRC`]) with one stored submission.
async fn forms_with_an_item() -> (Srv, String) {
    let s = Srv::start().await;
    let t = s.pro().await;
    register_from(&s, &t, "forms-1", forms_manifest(), FORMS_SRC)
        .await
        .ok();
    s.coll(
        &t,
        "forms",
        "submissions",
        "put",
        json!({"id": "a", "data": {"status": "new", "email": "x@example.com"}}),
    )
    .await
    .ok();
    (s, t)
}

#[tokio::test]
async fn a_plugin_keeps_its_pin_while_it_has_data_and_deleting_the_data_frees_it() {
    let (s, t) = forms_with_an_item().await;
    s.call(
        Method::PUT,
        "/v1/kv/forms/settings:filter",
        Some(&t),
        Some(json!({"value": "pending"})),
    )
    .await
    .ok();
    let used = s.used(&t).await;
    assert!(used > 0);
    let listed = s.get("/v1/plugins", &t).await;
    let forms = &listed.ok()[0];
    assert_eq!(forms["pluginId"], "forms");
    assert_eq!(forms["source"], FORMS_SRC);
    assert_eq!(forms["instances"], json!(["forms-1"]));
    assert_eq!(forms["items"], 1);
    assert_eq!(forms["kvKeys"], 1);

    // The real widget is removed; its data stays, and so does its claim on the id.
    s.call(Method::DELETE, "/v1/instances/forms-1", Some(&t), None)
        .await
        .ok();
    let refused = claim_forms(&s, &t, "https://evil.example/").await;
    refused.expect_err("PLUGIN_ID_TAKEN");
    assert!(refused.body["detail"]["instanceId"].is_null());
    // The same widget coming back (same source) gets its data again.
    register_from(&s, &t, "forms-2", forms_manifest(), FORMS_SRC)
        .await
        .ok();
    s.call(Method::DELETE, "/v1/instances/forms-2", Some(&t), None)
        .await
        .ok();

    // Deleting the plugin's data refunds every byte and releases the id.
    let deleted = s
        .call(Method::DELETE, "/v1/plugins/forms", Some(&t), None)
        .await;
    let d = deleted.ok();
    assert_eq!(d["deletedItems"], 1);
    assert_eq!(d["deletedKeys"], 1);
    assert_eq!(d["refundedBytes"], used);
    assert_eq!(d["released"], true);
    assert_eq!(s.used(&t).await, 0);
    claim_forms(&s, &t, "https://evil.example/").await.ok();
    // ...and the new claimant starts empty.
    let count = s.coll(&t, "forms", "submissions", "count", json!({})).await;
    count.expect_err("UNDECLARED_COLLECTION");
    s.call(Method::GET, "/v1/kv/forms/settings:filter", Some(&t), None)
        .await
        .expect_err("NOT_FOUND");
    s.call(Method::DELETE, "/v1/plugins/Bad Id", Some(&t), None)
        .await
        .expect_err("INVALID_ARGUMENT");
    s.stop().await;
}

#[tokio::test]
async fn deleting_an_installed_plugins_data_keeps_its_declaration_and_pin() {
    let (s, t) = forms_with_an_item().await;
    let d = s
        .call(Method::DELETE, "/v1/plugins/forms", Some(&t), None)
        .await;
    assert_eq!(d.ok()["released"], false);
    let count = s.coll(&t, "forms", "submissions", "count", json!({})).await;
    assert_eq!(count.ok()["count"], 0);
    claim_forms(&s, &t, "https://evil.example/")
        .await
        .expect_err("PLUGIN_ID_TAKEN");
    s.stop().await;
}
