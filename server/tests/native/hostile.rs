//! Hostile and malformed HTTP input: always a coded error, never a 5xx.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

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

/// Sends raw bytes on a fresh connection and reads the answer until the server closes it.
async fn raw_exchange(s: &Srv, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    sock.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_end(&mut got),
    )
    .await
    .expect("the server closes a connection it cannot parse");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn unparsable_requests_get_the_coded_body() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    for (request, status, code) in [
        (
            format!("PUT /v1/documents/d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: abc\r\n\r\n"),
            "400",
            "INVALID_ARGUMENT",
        ),
        (
            "PUT /v1/documents/d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n".to_string(),
            "400",
            "INVALID_ARGUMENT",
        ),
        (
            "GET /v1/health HTTP/1.1\r\nHo st: x\r\n\r\n".to_string(),
            "400",
            "INVALID_ARGUMENT",
        ),
        (
            format!("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(600_000)),
            "431",
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        let answer = raw_exchange(&s, request.as_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a full answer");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].is_string());
    }
    // The connection-level answers do not disturb the next request.
    s.get("/v1/health", &t).await.ok();
    s.stop().await;
}
