//! The periodic sweep: it removes what no row references while the server runs, and never
//! what a request in flight is writing.

use crate::support::*;
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
    let staging = s.dir().path().join("db.staging");
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

async fn keyed(s: &Srv, t: &str, key: &str) -> Resp {
    s.send(
        s.req(Method::POST, "/v1/assets/keys", Some(t))
            .query(&[("schemaId", "gallery.assets"), ("schemaVersion", "1")])
            .header("idempotency-key", key)
            .body(vec![1u8; 100]),
    )
    .await
}

#[tokio::test]
async fn idempotency_keys_outlive_a_day_only_with_their_asset() {
    let s = Srv::start_with(|c| c.sweep_interval_secs = 1).await;
    let t = s.pro().await;
    let kept = keyed(&s, &t, "kept").await.ok().clone();
    let old = keyed(&s, &t, "old").await.ok().clone();
    let recent = keyed(&s, &t, "recent").await.ok().clone();
    for a in [&old, &recent] {
        let key = a["objectKey"].as_str().unwrap();
        s.call(
            Method::DELETE,
            &format!("/v1/assets/keys/{key}"),
            Some(&t),
            None,
        )
        .await
        .ok();
    }
    let day_ago = monodit_server::db::now_ms() - 25 * 3600 * 1000;
    s.sql()
        .execute(
            "UPDATE asset_upload_keys SET created_at = ?1 WHERE idem_key IN ('kept', 'old')",
            [day_ago],
        )
        .unwrap();
    let remembered = |k: &str| -> i64 {
        s.sql()
            .query_row(
                "SELECT COUNT(*) FROM asset_upload_keys WHERE idem_key = ?1",
                [k],
                |r| r.get(0),
            )
            .unwrap()
    };
    for _ in 0..100 {
        if remembered("old") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        remembered("old"),
        0,
        "a day old and its asset gone: forgotten"
    );
    // Older than a day but its asset exists: a retry still finds it.
    assert_eq!(asset_of(keyed(&s, &t, "kept").await.ok()), asset_of(&kept));
    // Its asset is gone but it is less than a day old: the retry gets the same answer.
    assert_eq!(
        asset_of(keyed(&s, &t, "recent").await.ok()),
        asset_of(&recent)
    );
    // A forgotten key uploads anew.
    let again = keyed(&s, &t, "old").await;
    assert_ne!(again.ok()["objectKey"], old["objectKey"]);
    assert_eq!(s.used(&t).await, 200);
    s.stop().await;
}
