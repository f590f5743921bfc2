//! CORS for the SDK's cross-origin page: the backend under test trusts `http://app.test` (a
//! native test server does; `scripts/worker.sh` starts the Worker so), and no other origin.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn preflight_allows_the_sdk_headers_for_trusted_origins() {
    let s = Srv::start().await;
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
