//! CORS for the SDK's cross-origin page, and dev static files for sandboxed widgets.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn preflight_allows_the_sdk_headers_for_trusted_origins() {
    let s = Srv::start_native().await;
    let pre = s
        .send(
            s.req(Method::OPTIONS, "/v1/documents/x", None)
                .header("origin", "http://app.test")
                .header("access-control-request-method", "PUT")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, if-match, if-none-match",
                ),
        )
        .await;
    assert_eq!(pre.status, StatusCode::OK);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    let allowed = pre
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "if-match", "if-none-match"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));

    let evil = s
        .send(
            s.req(Method::OPTIONS, "/v1/documents/x", None)
                .header("origin", "http://evil.test")
                .header("access-control-request-method", "PUT"),
        )
        .await;
    assert!(evil.header("access-control-allow-origin").is_none());

    let t = s.pro().await;
    let put = s
        .send(
            s.req(Method::PUT, "/v1/documents/x", Some(&t))
                .header("origin", "http://app.test")
                .json(&json!({"value": 1, "schemaId": "a", "schemaVersion": 1})),
        )
        .await;
    assert_eq!(
        put.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert!(put
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("etag"));
    assert_eq!(
        put.header("cache-control"),
        Some("no-store"),
        "per-user answers are not cached"
    );
    // Errors carry CORS headers too, so the SDK can read their codes.
    let err = s
        .send(
            s.req(Method::GET, "/v1/me", None)
                .header("origin", "http://app.test"),
        )
        .await;
    err.expect_err("UNAUTHENTICATED");
    assert_eq!(
        err.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    s.stop().await;
}

#[tokio::test]
async fn star_allows_any_origin() {
    let s = Srv::start_with(|c| c.allow_origins = vec!["*".into()]).await;
    let pre = s
        .send(
            s.req(Method::OPTIONS, "/v1/me", None)
                .header("origin", "null")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization"),
        )
        .await;
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    s.stop().await;
}

#[tokio::test]
async fn dev_static_files_load_in_sandboxed_iframes() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(www.path().join("w.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let dir = www.path().to_path_buf();
    let s = Srv::start_with(move |c| c.static_dir = Some(dir)).await;
    let wasm = s
        .send(s.req(Method::GET, "/w.wasm", None).header("origin", "null"))
        .await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        wasm.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    assert_ne!(
        wasm.header("cache-control"),
        Some("no-store"),
        "static files stay cacheable"
    );
    let index = s.send(s.req(Method::GET, "/", None)).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&index.bytes).contains("demo"));
    s.send(s.req(Method::GET, "/missing.js", None))
        .await
        .expect_err("NOT_FOUND");
    s.send(s.req(Method::GET, "/v1/unknown", None))
        .await
        .expect_err("NOT_FOUND");
    s.stop().await;
}
