//! Hostile and malformed HTTP input: always a coded error, never a 5xx.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_and_wrong_types() {
    let s = Srv::start().await;
    let t = s.pro().await;
    for body in [
        "{",
        "null",
        "[]",
        "{\"value\": 1}",
        "{\"value\":1,\"schemaId\":5,\"schemaVersion\":1}",
        "{\"value\":1,\"schemaId\":\"a\",\"schemaVersion\":-1}",
        "\u{0}",
    ] {
        let r = s
            .send_raw_json(Method::PUT, "/v1/documents/d", &t, body)
            .await;
        r.expect_err("INVALID_ARGUMENT");
    }
    s.call(
        Method::POST,
        "/v1/meta",
        Some(&t),
        Some(json!({"documents": "nope"})),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.call(
        Method::POST,
        "/v1/meta",
        Some(&t),
        Some(json!({"documents": ["../etc"]})),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.call(
        Method::POST,
        "/v1/dev/users",
        None,
        Some(json!({"plan": "platinum"})),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.call(
        Method::PUT,
        "/v1/instances/i",
        Some(&t),
        Some(json!({"kind": "widget"})),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    let r = s
        .send(
            s.req(Method::PUT, "/v1/documents/d", Some(&t))
                .header("if-match", "garbage")
                .json(&json!({"value": 1, "schemaId": "a", "schemaVersion": 1})),
        )
        .await;
    r.expect_err("INVALID_ARGUMENT");
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let huge = vec![b' '; 9 * 1024 * 1024];
    let r = s
        .send(s.req(Method::PUT, "/v1/documents/d", Some(&t)).body(huge))
        .await;
    r.expect_err("PAYLOAD_TOO_LARGE");
    s.stop().await;
}

#[tokio::test]
async fn bad_ids_unknown_routes_and_bad_tokens() {
    let s = Srv::start().await;
    let t = s.pro().await;
    for path in [
        "/v1/documents/..%2F..%2Fetc",
        "/v1/documents/a%00b",
        "/v1/documents/%20",
        "/v1/assets/x%27%3B%20DROP%20TABLE%20users",
    ] {
        s.get(path, &t).await.expect_err("INVALID_ARGUMENT");
    }
    let long = "a".repeat(300);
    s.get(&format!("/v1/documents/{long}"), &t)
        .await
        .expect_err("INVALID_ARGUMENT");
    s.get("/v1/nothing-here", &t).await.expect_err("NOT_FOUND");
    s.get("/definitely/not", &t).await.expect_err("NOT_FOUND");
    s.call(Method::PATCH, "/v1/me", Some(&t), None)
        .await
        .expect_err("NOT_FOUND");
    s.call(Method::GET, "/v1/me", None, None)
        .await
        .expect_err("UNAUTHENTICATED");
    s.call(Method::GET, "/v1/me", Some("mdt_forged"), None)
        .await
        .expect_err("UNAUTHENTICATED");
    let r = s
        .send(
            s.req(Method::GET, "/v1/me", None)
                .header("authorization", "Basic Zm9vOmJhcg=="),
        )
        .await;
    r.expect_err("UNAUTHENTICATED");
    s.get("/v1/health", &t).await.ok();
    s.stop().await;
}

#[tokio::test]
async fn dev_routes_are_absent_outside_dev_mode() {
    let s = Srv::start_with(|c| c.dev = false).await;
    s.call(
        Method::POST,
        "/v1/dev/users",
        None,
        Some(json!({"plan": "pro"})),
    )
    .await
    .expect_err("NOT_FOUND");
    s.stop().await;
}
