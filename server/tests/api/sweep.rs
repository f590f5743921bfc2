//! The periodic sweep: it removes what no row references while the server runs, and never
//! what a request in flight is writing.

use crate::common::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// A body that trickles out over about `chunks` × 100 ms, across several sweeps.
fn trickle(chunk: usize, chunks: usize, byte: u8) -> reqwest::Body {
    let stream = futures::stream::iter(0..chunks).then(move |_| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(vec![byte; chunk])
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn the_sweep_takes_orphans_but_not_writes_in_flight() {
    let s = Srv::start_with(|c| c.sweep_interval_secs = 1).await;
    let t = s.pro().await;
    // Garbage a crash could have left: an object no row names, a stray staged file.
    let orphan = s.objects_dir().join("assets").join("ab".repeat(16));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"left behind").unwrap();
    let staging = s.dir.path().join("db.staging");
    let stray = staging.join("cd".repeat(16)).join("1");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left behind").unwrap();

    let session = s
        .call(
            Method::POST,
            "/v1/uploads",
            Some(&t),
            Some(
                json!({"bucketId": "sw", "size": 640 * 1024, "schemaId": "gallery.assets",
                        "schemaVersion": 1, "idempotencyKey": "sw"}),
            ),
        )
        .await;
    let id = session.ok()["uploadId"].as_str().unwrap().to_string();
    let single = s
        .req(Method::POST, "/v1/assets/sw", Some(&t))
        .query(&[("schemaId", "gallery.assets"), ("schemaVersion", "1")])
        .header("content-length", (2 * 1024 * 1024).to_string())
        .body(trickle(64 * 1024, 32, 5))
        .send();
    let part = s
        .req(Method::PUT, &format!("/v1/uploads/{id}/parts/1"), Some(&t))
        .header("content-length", (640 * 1024).to_string())
        .body(trickle(64 * 1024, 10, 6))
        .send();
    let (single, part) = tokio::join!(single, part);
    let single: serde_json::Value = single.unwrap().json().await.unwrap();
    assert_eq!(single["size"], 2 * 1024 * 1024, "{single}");
    assert_eq!(part.unwrap().status(), StatusCode::OK);
    assert!(!orphan.exists(), "the orphan object was swept");
    assert!(!stray.exists(), "the stray staged part was swept");

    let dl = s.send(s.http.get(single["url"].as_str().unwrap())).await;
    assert!(
        dl.bytes == vec![5u8; 2 * 1024 * 1024],
        "the streamed upload is intact"
    );
    // Survive one more sweep, then complete: the staged part is still there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let done = s
        .call(
            Method::POST,
            &format!("/v1/uploads/{id}/complete"),
            Some(&t),
            None,
        )
        .await;
    let dl = s.send(s.http.get(done.ok()["url"].as_str().unwrap())).await;
    assert!(dl.bytes == vec![6u8; 640 * 1024]);
    s.stop().await;
}
