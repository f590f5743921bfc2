//! Plans and quotas: gating, atomic enforcement, exact refunds.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

const GB: u64 = 1_000_000_000;

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
async fn free_plan_is_gated_off_storage_but_sees_its_account() {
    let s = Srv::start().await;
    let t = s.user("free", 0).await;
    let me = s.get("/v1/me", &t).await;
    assert_eq!(me.ok()["plan"], "free");
    assert_eq!(me.body["limitBytes"], 100_000_000u64);
    s.get("/v1/usage", &t).await.ok();
    s.put_doc(&t, "x", json!(1))
        .await
        .expect_err("PLAN_REQUIRED");
    s.get("/v1/documents/x", &t)
        .await
        .expect_err("PLAN_REQUIRED");
    s.call(Method::POST, "/v1/meta", Some(&t), Some(json!({})))
        .await
        .expect_err("PLAN_REQUIRED");
    s.upload(&t, "b", "a.png", "image/png", vec![1])
        .await
        .expect_err("PLAN_REQUIRED");
    s.get("/v1/assets/b", &t).await.expect_err("PLAN_REQUIRED");
    s.get("/v1/buckets", &t).await.expect_err("PLAN_REQUIRED");
    s.coll(&t, "forms", "submissions", "get", json!({"id": "a"}))
        .await
        .expect_err("PLAN_REQUIRED");
    // Upgrading opens storage.
    let up = s
        .call(
            Method::PUT,
            "/v1/dev/plan",
            Some(&t),
            Some(json!({"plan": "pro", "addons": 2})),
        )
        .await;
    assert_eq!(up.ok()["limitBytes"], 15 * GB);
    s.put_doc(&t, "x", json!(1)).await.ok();
    // Downgrading closes it again at once (no stale authorisation).
    s.call(
        Method::PUT,
        "/v1/dev/plan",
        Some(&t),
        Some(json!({"plan": "free"})),
    )
    .await
    .ok();
    s.get("/v1/documents/x", &t)
        .await
        .expect_err("PLAN_REQUIRED");
    s.stop().await;
}

#[tokio::test]
async fn addons_add_five_gigabytes_each() {
    let s = Srv::start().await;
    let t = s.user("pro", 3).await;
    assert_eq!(s.get("/v1/me", &t).await.ok()["limitBytes"], 20 * GB);
    s.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_uploads_near_the_limit_never_overshoot() {
    let s = Srv::start().await;
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
    let s = Srv::start().await;
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
async fn refunds_are_exact_on_overwrite_and_delete() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.put_doc(&t, "d", json!("a".repeat(100))).await.ok();
    assert_eq!(s.used(&t).await, 102);
    s.put_doc(&t, "d", json!("a".repeat(40))).await.ok();
    assert_eq!(s.used(&t).await, 42);
    let up = s
        .upload(&t, "p", "a.bin", "application/octet-stream", vec![0; 1000])
        .await;
    let key = up.ok()["objectKey"].as_str().unwrap().to_string();
    assert_eq!(s.used(&t).await, 1042);
    s.call(
        Method::DELETE,
        &format!("/v1/assets/p/{key}"),
        Some(&t),
        None,
    )
    .await
    .ok();
    assert_eq!(s.used(&t).await, 42);
    let del = s
        .call(Method::DELETE, "/v1/buckets/d1-json/d", Some(&t), None)
        .await;
    assert_eq!(del.ok()["refundedBytes"], 42);
    assert_eq!(s.used(&t).await, 0);
    let usage = s.get("/v1/usage", &t).await;
    assert_eq!(usage.ok()["usedBytes"], 0);
    assert_eq!(
        usage.body["buckets"].as_array().unwrap().len(),
        1,
        "the emptied asset bucket remains"
    );
    s.stop().await;
}

#[tokio::test]
async fn mixed_concurrent_writes_never_overshoot() {
    let s = Srv::start().await;
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

#[tokio::test]
async fn collection_items_count_and_refund_exactly() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.register(&t, "f", forms_manifest(), json!({})).await.ok();
    let put = |id: &str, data: serde_json::Value| {
        s.coll(
            &t,
            "forms",
            "submissions",
            "put",
            json!({"id": id, "data": data}),
        )
    };
    put("a", json!({"formId": "contact"})).await.ok();
    assert_eq!(s.used(&t).await, r#"{"formId":"contact"}"#.len() as u64);
    put("a", json!({"formId": "c"})).await.ok();
    assert_eq!(s.used(&t).await, r#"{"formId":"c"}"#.len() as u64);
    s.coll(
        &t,
        "forms",
        "submissions",
        "deleteMany",
        json!({"ids": ["a"]}),
    )
    .await
    .ok();
    assert_eq!(s.used(&t).await, 0);
    assert_eq!(s.get("/v1/usage", &t).await.ok()["collectionBytes"], 0);
    s.stop().await;
}

/// The dev-only limit override: lets browser and e2e tests reach the seed's QUOTA_EXCEEDED
/// with real uploads instead of 5 GB of data, and restores the plan's limit when cleared.
#[tokio::test]
async fn dev_limit_override_makes_quota_reachable_and_clears() {
    let s = Srv::start().await;
    let t = s.pro_with_limit(1000).await;
    assert_eq!(s.get("/v1/me", &t).await.ok()["limitBytes"], 1000);
    s.upload(&t, "g", "a.bin", "application/octet-stream", vec![7; 600])
        .await
        .ok();
    let r = s
        .upload(&t, "g", "b.bin", "application/octet-stream", vec![7; 600])
        .await;
    r.expect_err("QUOTA_EXCEEDED");
    assert_eq!(r.body["detail"]["limitBytes"], 1000);
    assert_eq!(s.used(&t).await, 600);
    // Clearing the override restores the plan's 5 GB.
    let up = s
        .call(
            Method::PUT,
            "/v1/dev/plan",
            Some(&t),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(up.ok()["limitBytes"], 5 * GB);
    s.upload(&t, "g", "b.bin", "application/octet-stream", vec![7; 600])
        .await
        .ok();
    s.stop().await;
}
