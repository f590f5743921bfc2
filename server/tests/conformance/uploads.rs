//! Resumable uploads (`/v1/uploads`): sessions, parts, completion, abort, expiry, lost answers.

use crate::support::uploads::*;
use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Bytes the user's open upload reservations hold (`GET /v1/usage` `reservedBytes`).
async fn reserved(s: &Srv, t: &str) -> i64 {
    s.get("/v1/usage", t).await.ok()["reservedBytes"]
        .as_i64()
        .expect("usage reports reservedBytes")
}

#[tokio::test]
async fn the_same_key_finds_the_open_session_with_its_parts() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let first = create(&s, &t, "b", "k1", 10).await.ok().clone();
    let id = first["uploadId"].as_str().unwrap();
    put_part(&s, &t, id, 1, vec![1; 10]).await.ok();
    let again = create(&s, &t, "b", "k1", 10).await;
    assert_eq!(again.ok()["uploadId"], id);
    assert_eq!(part_numbers(&again.body), vec![1]);
    assert_eq!(reserved(&s, &t).await, 10, "reserved once");
    // An empty file has no parts and completes at once.
    let empty = create(&s, &t, "b", "k0", 0).await.ok().clone();
    let asset = complete(&s, &t, empty["uploadId"].as_str().unwrap()).await;
    assert_eq!(asset.ok()["size"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_key_reused_for_another_upload_is_refused_and_sizes_are_checked_first() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let first = create(&s, &t, "b", "k1", 10).await.ok().clone();
    // The same key on another size or bucket names a different upload: never its session.
    for (bucket, size) in [("b", 11), ("c", 10)] {
        let other = create(&s, &t, bucket, "k1", size).await;
        other.expect_err("CONFLICT");
    }
    // Past the largest upload is PAYLOAD_TOO_LARGE even under a key that exists.
    let huge = create(&s, &t, "b", "k1", 5 * 1024 * 1024 * 1024 + 1).await;
    huge.expect_err("PAYLOAD_TOO_LARGE");
    // The real retry still finds its session, reserved once.
    let again = create(&s, &t, "b", "k1", 10).await;
    assert_eq!(again.ok()["uploadId"], first["uploadId"]);
    assert_eq!(reserved(&s, &t).await, 10);
    s.stop().await;
}

#[tokio::test]
async fn lost_part_and_completion_answers_are_retried_safely() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", 30).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    s.set_faults(&t, json!({"uploadResponseLost": 2})).await;
    let lost = part_request(&s, &t, &id, 1, vec![4; 30]).send().await;
    assert!(lost.is_err(), "no answer: {lost:?}");
    assert_eq!(
        part_numbers(s.get(&format!("/v1/uploads/{id}"), &t).await.ok()),
        vec![1],
        "the part was stored"
    );
    let lost = s
        .req(
            Method::POST,
            &format!("/v1/uploads/{id}/complete"),
            Some(&t),
        )
        .send()
        .await;
    assert!(lost.is_err(), "no answer: {lost:?}");
    let asset = complete(&s, &t, &id).await.ok().clone();
    assert_eq!(asset["size"], 30);
    let list = s.get("/v1/assets/b", &t).await;
    assert_eq!(list.ok()["assets"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["assets"][0]["objectKey"], asset["objectKey"]);
    assert_eq!(s.used(&t).await, 30);
    assert_eq!(reserved(&s, &t).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn mixed_concurrent_uploads_near_the_limit_never_overshoot() {
    let s = Srv::start().await;
    const SIZE: u64 = 100_000;
    // Room for exactly 10 files (plus a little that fits no 11th).
    let t = s.pro_with_limit(10 * SIZE + SIZE / 2).await;
    let mut tasks = Vec::new();
    for i in 0..24u32 {
        let (http, base, t) = (s.http.clone(), s.base.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let refused = |status: u16, body: &Value| {
                assert_eq!(
                    (status, body["code"].as_str()),
                    (507, Some("QUOTA_EXCEEDED"))
                );
                false
            };
            if i % 2 == 0 {
                let r = http
                    .post(format!("{base}/v1/assets/race"))
                    .query(&[("schemaId", "gallery.assets"), ("schemaVersion", "1")])
                    .bearer_auth(&t)
                    .body(vec![i as u8; SIZE as usize])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                return status == 200 || refused(status, &body);
            }
            let r = http
                .post(format!("{base}/v1/uploads"))
                .bearer_auth(&t)
                .json(
                    &json!({"bucketId": "race", "size": SIZE, "schemaId": "gallery.assets",
                              "schemaVersion": 1, "idempotencyKey": format!("r{i}")}),
                )
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            if status != 200 {
                return refused(status, &body);
            }
            let id = body["uploadId"].as_str().unwrap();
            let part = http
                .put(format!("{base}/v1/uploads/{id}/parts/1"))
                .bearer_auth(&t)
                .body(vec![i as u8; SIZE as usize])
                .send()
                .await
                .unwrap();
            assert_eq!(part.status(), 200);
            let done = http
                .post(format!("{base}/v1/uploads/{id}/complete"))
                .bearer_auth(&t)
                .send()
                .await
                .unwrap();
            assert_eq!(done.status(), 200, "a reserved upload always completes");
            true
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(ok, 10, "exactly the files that fit are stored");
    assert_eq!(s.used(&t).await, 10 * SIZE);
    let list = s.get("/v1/assets/race", &t).await;
    assert_eq!(list.ok()["assets"].as_array().unwrap().len(), 10);
    assert_eq!(
        reserved(&s, &t).await,
        0,
        "every reservation settled or released"
    );
    s.stop().await;
}

#[tokio::test]
async fn concurrent_repeats_of_one_key_store_once() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, base, t) = (s.http.clone(), s.base.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let single = http
                .post(format!("{base}/v1/assets/rep"))
                .query(&[("schemaId", "gallery.assets"), ("schemaVersion", "1")])
                .bearer_auth(&t)
                .header("idempotency-key", "same")
                .body(vec![1u8; 200_000])
                .send()
                .await
                .unwrap();
            let status = single.status().as_u16();
            let single: Value = single.json().await.unwrap();
            let session: Value = http
                .post(format!("{base}/v1/uploads"))
                .bearer_auth(&t)
                .json(
                    &json!({"bucketId": "rep", "size": 10, "schemaId": "gallery.assets",
                              "schemaVersion": 1, "idempotencyKey": "same"}),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                status,
                single,
                session["uploadId"].as_str().unwrap().to_string(),
            )
        }));
    }
    let mut keys = std::collections::BTreeSet::new();
    let mut sessions = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, single, session) = task.await.unwrap();
        match status {
            200 => {
                keys.insert(single["objectKey"].as_str().unwrap().to_string());
            }
            409 => assert_eq!(single["code"], "CONFLICT"),
            other => panic!("unexpected {other}: {single}"),
        }
        sessions.insert(session);
    }
    assert_eq!(keys.len(), 1, "every answer names the one asset");
    assert_eq!(sessions.len(), 1, "one session for one key");
    let list = s.get("/v1/assets/rep", &t).await;
    assert_eq!(list.ok()["assets"].as_array().unwrap().len(), 1);
    assert_eq!(s.used(&t).await, 200_000);
    assert_eq!(reserved(&s, &t).await, 10, "the one session's reservation");
    s.stop().await;
}
