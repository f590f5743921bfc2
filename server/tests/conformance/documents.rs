//! Documents (d1-json) and batch meta over HTTP.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn put_then_get_with_etag_and_304() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let put = s
        .put_doc(&t, "notes-1", json!({"text": "Hello world"}))
        .await;
    assert_eq!(put.ok()["version"], 1);
    assert_eq!(put.header("etag"), Some("\"1\""));
    let size = put.body["size"].as_u64().unwrap();
    assert_eq!(size, r#"{"text":"Hello world"}"#.len() as u64);

    let got = s.get("/v1/documents/notes-1", &t).await;
    assert_eq!(got.ok()["value"]["text"], "Hello world");
    assert_eq!(got.body["contract"]["schemaId"], "notes.plaintext");
    assert_eq!(got.body["contract"]["backend"], "d1-json");
    assert_eq!(got.header("etag"), Some("\"1\""));

    let cached = s
        .send(
            s.req(Method::GET, "/v1/documents/notes-1", Some(&t))
                .header("if-none-match", "\"1\""),
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.bytes.is_empty());

    s.put_doc(&t, "notes-1", json!({"text": "v2"})).await.ok();
    let stale = s
        .send(
            s.req(Method::GET, "/v1/documents/notes-1", Some(&t))
                .header("if-none-match", "\"1\""),
        )
        .await;
    assert_eq!(stale.ok()["version"], 2);
    assert_eq!(stale.body["value"]["text"], "v2");
    s.stop().await;
}

#[tokio::test]
async fn a_missing_document_can_answer_no_content_instead_of_not_found() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let r = s.get("/v1/documents/fresh?missing=empty", &t).await;
    assert_eq!(r.status.as_u16(), 204);
    assert!(r.bytes.is_empty());
    s.get("/v1/documents/fresh?missing=other", &t)
        .await
        .expect_err("INVALID_ARGUMENT");
    s.put_doc(&t, "fresh", json!({"a": 1})).await.ok();
    let r = s.get("/v1/documents/fresh?missing=empty", &t).await;
    assert_eq!(r.ok()["value"]["a"], 1);
    s.stop().await;
}

#[tokio::test]
async fn meta_has_version_size_and_no_payload() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.get("/v1/documents/nope/meta", &t)
        .await
        .expect_err("NOT_FOUND");
    s.get("/v1/documents/nope", &t)
        .await
        .expect_err("NOT_FOUND");
    s.put_doc(&t, "b", json!([1, 2, 3])).await.ok();
    let m = s.get("/v1/documents/b/meta", &t).await;
    let body = m.ok();
    assert_eq!(body["version"], 1);
    assert_eq!(body["size"], 7);
    assert!(body["updatedAt"].as_i64().unwrap() > 0);
    assert!(body.get("value").is_none());
    s.stop().await;
}

#[tokio::test]
async fn if_match_and_expected_version_conflicts_carry_current_version() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let body = |v: u64| json!({"value": {"n": v}, "schemaId": "notes.plaintext", "schemaVersion": 1, "expectedVersion": v});
    // expectedVersion 0 = must not exist yet.
    s.call(Method::PUT, "/v1/documents/d", Some(&t), Some(body(0)))
        .await
        .ok();
    let again = s
        .call(Method::PUT, "/v1/documents/d", Some(&t), Some(body(0)))
        .await;
    again.expect_err("CONFLICT");
    assert_eq!(again.body["detail"]["currentVersion"], 1);
    s.call(Method::PUT, "/v1/documents/d", Some(&t), Some(body(1)))
        .await
        .ok();

    let stale = s
        .send(
            s.req(Method::PUT, "/v1/documents/d", Some(&t))
                .header("if-match", "\"1\"")
                .json(&json!({"value": 1, "schemaId": "notes.plaintext", "schemaVersion": 1})),
        )
        .await;
    stale.expect_err("CONFLICT");
    assert_eq!(stale.body["detail"]["currentVersion"], 2);
    let fresh = s
        .send(
            s.req(Method::PUT, "/v1/documents/d", Some(&t))
                .header("if-match", "\"2\"")
                .json(&json!({"value": 1, "schemaId": "notes.plaintext", "schemaVersion": 1})),
        )
        .await;
    assert_eq!(fresh.ok()["version"], 3);
    s.stop().await;
}

#[tokio::test]
async fn retried_put_with_same_mutation_id_is_applied_once() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let body = json!({"value": {"text": "once"}, "schemaId": "notes.plaintext", "schemaVersion": 1, "mutationId": "m-123"});
    // Concurrent retries of one logical write (a lost acknowledgement, retried by the outbox).
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (http, url, t, body) = (
            s.http.clone(),
            format!("{}/v1/documents/idem", s.base),
            t.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = http
                .put(url)
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap()["version"], 1);
    }
    let used = s.used(&t).await;
    assert_eq!(used, r#"{"text":"once"}"#.len() as u64);
    // Another write moves the document on; a late retry still answers with its own version.
    s.put_doc(&t, "idem", json!({"text": "later"})).await.ok();
    let late = s
        .call(Method::PUT, "/v1/documents/idem", Some(&t), Some(body))
        .await;
    assert_eq!(late.ok()["version"], 1);
    let got = s.get("/v1/documents/idem", &t).await;
    assert_eq!(got.ok()["value"]["text"], "later");
    assert_eq!(got.body["version"], 2);
    s.stop().await;
}

#[tokio::test]
async fn other_contract_is_incompatible() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.put_doc(&t, "shared", json!({})).await.ok();
    for (id, v) in [("notes.plaintext", 2), ("todo.list", 1)] {
        let r = s
            .call(
                Method::PUT,
                "/v1/documents/shared",
                Some(&t),
                Some(json!({"value": 1, "schemaId": id, "schemaVersion": v})),
            )
            .await;
        r.expect_err("INCOMPATIBLE_BUCKET");
    }
    s.stop().await;
}

#[tokio::test]
async fn documents_over_one_megabyte_are_refused() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let big = "x".repeat(1024 * 1024);
    s.put_doc(&t, "big", json!(big))
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    s.get("/v1/documents/big", &t).await.expect_err("NOT_FOUND");
    assert_eq!(s.used(&t).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn batch_meta_covers_documents_and_asset_buckets() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let mut ids = Vec::new();
    for i in 0..100 {
        let id = format!("doc-{i}");
        if i % 2 == 0 {
            s.put_doc(&t, &id, json!({"i": i})).await.ok();
        }
        ids.push(id);
    }
    s.upload(&t, "pics", "a.png", "image/png", vec![1; 10])
        .await
        .ok();
    let r = s
        .call(
            Method::POST,
            "/v1/meta",
            Some(&t),
            Some(json!({"documents": ids, "assets": ["pics", "none"]})),
        )
        .await;
    let b = r.ok();
    assert_eq!(b["documents"].as_object().unwrap().len(), 100);
    assert_eq!(b["documents"]["doc-0"]["version"], 1);
    assert!(b["documents"]["doc-1"].is_null());
    assert_eq!(b["assets"]["pics"]["version"], 1);
    assert_eq!(b["assets"]["pics"]["count"], 1);
    assert_eq!(b["assets"]["pics"]["bytes"], 10);
    assert!(b["assets"]["none"].is_null());

    let too_many: Vec<String> = (0..1001).map(|i| format!("d{i}")).collect();
    s.call(
        Method::POST,
        "/v1/meta",
        Some(&t),
        Some(json!({"documents": too_many})),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.stop().await;
}

#[tokio::test]
async fn another_users_buckets_are_not_found() {
    let s = Srv::start().await;
    let alice = s.pro().await;
    let bob = s.pro().await;
    s.put_doc(&alice, "private", json!({"secret": 1}))
        .await
        .ok();
    let up = s
        .upload(&alice, "pics", "a.png", "image/png", vec![7; 5])
        .await;
    let key = up.ok()["objectKey"].as_str().unwrap().to_string();

    s.get("/v1/documents/private", &bob)
        .await
        .expect_err("NOT_FOUND");
    s.get("/v1/documents/private/meta", &bob)
        .await
        .expect_err("NOT_FOUND");
    s.call(
        Method::DELETE,
        "/v1/buckets/d1-json/private",
        Some(&bob),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    s.call(
        Method::DELETE,
        "/v1/buckets/r2-assets/pics",
        Some(&bob),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    s.call(
        Method::DELETE,
        &format!("/v1/assets/pics/{key}"),
        Some(&bob),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    assert_eq!(
        s.get("/v1/assets/pics", &bob).await.ok()["assets"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.get("/v1/buckets", &bob)
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let meta = s
        .call(
            Method::POST,
            "/v1/meta",
            Some(&bob),
            Some(json!({"documents": ["private"], "assets": ["pics"]})),
        )
        .await;
    assert!(meta.ok()["documents"]["private"].is_null());
    assert!(meta.body["assets"]["pics"].is_null());
    // Bob writing the same bucket id gets his own bucket; Alice's is untouched.
    s.put_doc(&bob, "private", json!({"bob": true})).await.ok();
    assert_eq!(
        s.get("/v1/documents/private", &alice).await.ok()["value"]["secret"],
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn versions_never_repeat_after_a_bucket_is_deleted() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.put_doc(&t, "re", json!(1)).await.ok();
    s.put_doc(&t, "re", json!(2)).await.ok();
    s.call(Method::DELETE, "/v1/buckets/d1-json/re", Some(&t), None)
        .await
        .ok();
    let again = s.put_doc(&t, "re", json!(3)).await;
    // A cached "2" from before the deletion must never match the new content.
    assert_eq!(again.ok()["version"], 3);
    s.stop().await;
}

#[tokio::test]
async fn dev_faults_fail_the_callers_next_writes_with_a_real_500() {
    let s = Srv::start().await;
    let (t, other) = (s.pro().await, s.pro().await);
    s.set_faults(&t, json!({"documentPutErrors": 2})).await;
    for _ in 0..2 {
        let r = s.put_doc(&t, "faulty", json!("x")).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        r.expect_err("INTERNAL");
    }
    // Nothing was written by the failed attempts; another user is never affected.
    s.get("/v1/documents/faulty", &t)
        .await
        .expect_err("NOT_FOUND");
    s.put_doc(&other, "faulty", json!("y")).await.ok();
    assert_eq!(s.put_doc(&t, "faulty", json!("x")).await.ok()["version"], 1);
    s.stop().await;
}

#[tokio::test]
async fn a_lost_document_answer_is_stored_once_and_answered_again_by_its_mutation_id() {
    let s = Srv::start().await;
    let t = s.pro().await;
    s.set_faults(&t, json!({"documentResponseLost": 1})).await;
    let body = json!({"value": "kept", "schemaId": "notes.plaintext", "schemaVersion": 1,
        "mutationId": "m-lost-1", "expectedVersion": 0});
    let lost = s
        .req(Method::PUT, "/v1/documents/lost", Some(&t))
        .json(&body)
        .send()
        .await;
    assert!(lost.is_err(), "no answer: {lost:?}");
    // It was stored; the same mutation (same condition) is answered from the record.
    let again = s
        .call(Method::PUT, "/v1/documents/lost", Some(&t), Some(body))
        .await;
    assert_eq!(again.ok()["version"], 1);
    let doc = s.get("/v1/documents/lost", &t).await;
    assert_eq!(doc.ok()["value"], "kept");
    assert_eq!(doc.header("etag"), Some("\"1\""));
    s.stop().await;
}
