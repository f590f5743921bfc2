//! Hostile and malformed HTTP input: always a coded error, never a 5xx.

use crate::support::*;
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
async fn unrouted_methods_on_known_paths_are_405_with_allow() {
    // (OPTIONS belongs to the CORS layer, which answers preflights for every path.)
    let s = Srv::start().await;
    let t = s.pro().await;
    for (method, path, allow) in [
        ("TRACE", "/v1/health", "GET"),
        ("PATCH", "/v1/me", "GET"),
        ("POST", "/v1/kv/forms/settings%3Atheme", "GET"),
        ("DELETE", "/v1/usage", "GET"),
    ] {
        let r = s
            .send(s.req(
                Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                Some(&t),
            ))
            .await;
        assert_eq!(r.status.as_u16(), 405, "{method} {path}: {}", r.body);
        assert_eq!(r.body["code"], "INVALID_ARGUMENT", "{}", r.body);
        assert!(r.body["message"].is_string());
        let allowed = r.header("allow").unwrap_or_default();
        assert!(
            allowed.split(',').any(|m| m.trim() == allow),
            "{method} {path}: Allow {allowed:?}"
        );
    }
    // Unknown paths stay 404, whatever the method.
    s.call(Method::TRACE, "/v1/nothing-here", Some(&t), None)
        .await
        .expect_err("NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn json_bodies_are_read_as_the_openapi_spec_describes_them() {
    let s = Srv::start().await;
    let t = s.pro().await;
    // Bodies are objects: serde alone would read `[]` as an empty batch.
    for (method, path) in [
        (Method::POST, "/v1/meta"),
        (Method::PUT, "/v1/kv/forms/settings%3Ax"),
        (Method::PUT, "/v1/documents/d"),
    ] {
        s.send_raw_json(method.clone(), path, &t, " []")
            .await
            .expect_err("INVALID_ARGUMENT");
        s.send_raw_json(method, path, &t, "[{\"value\": 1}]")
            .await
            .expect_err("INVALID_ARGUMENT");
    }
    // `2.0` is an integer in JSON Schema; null is "omitted" for optional fields.
    let r = s
        .send_raw_json(
            Method::POST,
            "/v1/dev/users",
            "",
            r#"{"plan": "pro", "addons": 1.0, "limitBytes": 1000.0}"#,
        )
        .await;
    let u = r.ok()["token"].as_str().unwrap().to_string();
    let me = s.get("/v1/me", &u).await;
    assert_eq!(me.ok()["limitBytes"], 1000);
    assert_eq!(me.ok()["addons"], 1);
    s.send_raw_json(
        Method::PUT,
        "/v1/documents/d",
        &t,
        r#"{"value": 2.5, "schemaId": "a", "schemaVersion": 1.0, "mutationId": null, "expectedVersion": null}"#,
    )
    .await
    .ok();
    let doc = s.get("/v1/documents/d", &t).await;
    assert_eq!(doc.ok()["value"], 2.5);
    s.send_raw_json(
        Method::PUT,
        "/v1/documents/d2",
        &t,
        r#"{"value": 1, "schemaId": "a", "schemaVersion": 1.5}"#,
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    let r = s
        .send_raw_json(
            Method::POST,
            "/v1/dev/users",
            "",
            r#"{"plan": "pro", "limitBytes": null}"#,
        )
        .await;
    assert!(r.ok()["token"].is_string());
    // The largest add-on count the spec allows is not an overflow.
    let r = s
        .send_raw_json(
            Method::POST,
            "/v1/dev/users",
            "",
            r#"{"plan": "pro", "addons": 4294967295}"#,
        )
        .await;
    let big = r.ok()["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/v1/me", &big).await.ok()["limitBytes"], u64::MAX);
    s.stop().await;
}
