//! CORS with `--allow-origin *`, and dev static files for sandboxed widgets (the trusted-origin
//! answers every backend gives are in `tests/conformance/cors.rs`).

use crate::support::*;
use reqwest::{Method, StatusCode};

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
