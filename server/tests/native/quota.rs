//! Plans and quotas: gating, atomic enforcement, exact refunds.

use crate::support::quota::*;
use crate::support::*;
use serde_json::json;

/// Puts the user `headroom` bytes below their limit by recording settled usage directly (the
/// server then enforces from there; 5 GB of real uploads would not fit a test run).
fn fill_to_headroom(s: &Srv, token: &str, headroom: u64) -> u64 {
    let conn = s.sql();
    let hash = monodit_server::store::users::hash_token(token);
    let used = 5 * GB - headroom;
    conn.execute(
        "UPDATE users SET used_bytes = ?1 WHERE token_hash = ?2",
        rusqlite::params![used as i64, hash],
    )
    .unwrap();
    used
}

#[tokio::test]
async fn twenty_concurrent_uploads_near_the_limit_never_overshoot() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    const SIZE: u64 = 100_000;
    // Room for exactly 10 uploads (plus a little that fits no 11th).
    let before = fill_to_headroom(&s, &t, 10 * SIZE + SIZE / 2);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, base, t) = (s.http.clone(), s.base.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/assets/race"))
                .query(&[
                    ("name", format!("f{i}.bin")),
                    ("schemaId", "gallery.assets".into()),
                    ("schemaVersion", "1".into()),
                ])
                .bearer_auth(t)
                .header("content-type", "application/octet-stream")
                .body(vec![i as u8; SIZE as usize])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => ok += 1,
            507 => assert_eq!(body["code"], "QUOTA_EXCEEDED"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 10, "exactly the uploads that fit succeed");
    let used = s.used(&t).await;
    assert_eq!(used, before + 10 * SIZE);
    assert!(used <= 5 * GB);
    let list = s.get("/v1/assets/race", &t).await;
    assert_eq!(list.ok()["assets"].as_array().unwrap().len(), 10);
    let reserved: i64 = s
        .sql()
        .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reserved, 0, "every reservation settled or released");
    s.stop().await;
}

#[tokio::test]
async fn a_write_that_would_exceed_fails_and_changes_nothing() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    s.put_doc(&t, "d", json!("small")).await.ok();
    let before = fill_to_headroom(&s, &t, 10);
    let r = s
        .put_doc(&t, "d", json!("this value is much longer than ten bytes"))
        .await;
    r.expect_err("QUOTA_EXCEEDED");
    assert_eq!(r.body["detail"]["limitBytes"], 5 * GB);
    let doc = s.get("/v1/documents/d", &t).await;
    assert_eq!(doc.ok()["value"], "small");
    assert_eq!(doc.body["version"], 1);
    assert_eq!(s.used(&t).await, before);
    s.upload(&t, "p", "a.bin", "application/octet-stream", vec![0; 11])
        .await
        .expect_err("QUOTA_EXCEEDED");
    assert_eq!(
        s.get("/v1/assets/p", &t).await.ok()["assets"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Shrinking a document always works, even at the limit, and refunds exactly.
    s.put_doc(&t, "d", json!("")).await.ok();
    assert_eq!(s.used(&t).await, before - 5);
    s.stop().await;
}

#[tokio::test]
async fn mixed_concurrent_writes_never_overshoot() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    s.register(&t, "f", forms_manifest(), json!({})).await.ok();
    let before = fill_to_headroom(&s, &t, 50_000);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (http, base, t) = (s.http.clone(), s.base.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let r = match i % 3 {
                0 => http
                    .put(format!("{base}/v1/documents/d{i}"))
                    .bearer_auth(&t)
                    .json(&json!({"value": "x".repeat(5_000), "schemaId": "notes.plaintext", "schemaVersion": 1})),
                1 => http
                    .post(format!("{base}/v1/assets/a{i}?schemaId=gallery.assets&schemaVersion=1"))
                    .bearer_auth(&t)
                    .body(vec![0u8; 5_000]),
                _ => http
                    .post(format!("{base}/v1/collections/forms/submissions/put"))
                    .bearer_auth(&t)
                    .json(&json!({"id": format!("c{i}"), "data": "y".repeat(5_000)})),
            }
            .send()
            .await
            .unwrap();
            r.status().as_u16()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            507 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let used = s.used(&t).await;
    assert!(used <= 5 * GB, "overshoot: {used}");
    assert!(ok >= 9, "writes that fit succeed ({ok})");
    // Every success is accounted for: documents and items are ~5,002 bytes, assets 5,000.
    assert!(
        used - before >= ok * 5_000 && used - before <= ok * 5_002,
        "{used} {before} {ok}"
    );
    s.stop().await;
}
