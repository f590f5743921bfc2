//! Resumable uploads (`/v1/uploads`): sessions, parts, completion, abort, expiry, lost answers.

use crate::native_support::files_under;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PART: usize = 8 * 1024 * 1024;

pub async fn create(s: &Srv, token: &str, bucket: &str, key: &str, size: u64) -> Resp {
    s.call(
        Method::POST,
        "/v1/uploads",
        Some(token),
        Some(json!({
            "bucketId": bucket, "name": "movie.mp4", "contentType": "video/mp4", "size": size,
            "schemaId": "gallery.assets", "schemaVersion": 1, "idempotencyKey": key,
        })),
    )
    .await
}

pub fn part_request(
    s: &Srv,
    token: &str,
    upload_id: &str,
    n: u32,
    bytes: Vec<u8>,
) -> reqwest::RequestBuilder {
    s.req(
        Method::PUT,
        &format!("/v1/uploads/{upload_id}/parts/{n}"),
        Some(token),
    )
    .body(bytes)
}

pub async fn put_part(s: &Srv, token: &str, upload_id: &str, n: u32, bytes: Vec<u8>) -> Resp {
    s.send(part_request(s, token, upload_id, n, bytes)).await
}

pub async fn complete(s: &Srv, token: &str, upload_id: &str) -> Resp {
    s.call(
        Method::POST,
        &format!("/v1/uploads/{upload_id}/complete"),
        Some(token),
        None,
    )
    .await
}

fn reserved(s: &Srv) -> i64 {
    s.sql()
        .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
        .unwrap()
}

/// Files under the server's staging directory (`<db>.staging`).
fn staged_files(s: &Srv) -> Vec<std::path::PathBuf> {
    files_under(&s.dir().path().join("db.staging"))
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn part_numbers(session: &Value) -> Vec<u64> {
    session["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn parts_in_any_order_complete_into_one_asset() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let bytes = data(2 * PART + 100);
    let size = bytes.len() as u64;
    let session = create(&s, &t, "films", "film-1", size).await.ok().clone();
    assert_eq!(session["size"], size);
    assert_eq!(session["partSize"], PART);
    assert_eq!(session["bucketId"], "films");
    assert!(session["parts"].as_array().unwrap().is_empty());
    assert!(session["expiresAt"].as_i64().unwrap() > 0);
    assert!(session.get("completed").is_none());
    let id = session["uploadId"].as_str().unwrap().to_string();
    assert_eq!(
        reserved(&s),
        size as i64,
        "the whole size is reserved at once"
    );

    let p3 = put_part(&s, &t, &id, 3, bytes[2 * PART..].to_vec()).await;
    assert_eq!(p3.ok(), &json!({"partNumber": 3, "size": 100}));
    let r = complete(&s, &t, &id).await;
    r.expect_err("CONFLICT");
    assert_eq!(r.body["detail"]["missing"], json!([1, 2]));
    // A part put twice is replaced (here first with wrong bytes of the right length).
    put_part(&s, &t, &id, 1, vec![0; PART]).await.ok();
    put_part(&s, &t, &id, 1, bytes[..PART].to_vec()).await.ok();
    let got = s.get(&format!("/v1/uploads/{id}"), &t).await;
    assert_eq!(part_numbers(got.ok()), vec![1, 3]);
    put_part(&s, &t, &id, 2, bytes[PART..2 * PART].to_vec())
        .await
        .ok();

    let asset = complete(&s, &t, &id).await.ok().clone();
    assert_eq!(asset["size"], size);
    assert_eq!(asset["name"], "movie.mp4");
    assert_eq!(asset["contentType"], "video/mp4");
    let dl = s.send(s.http.get(asset["url"].as_str().unwrap())).await;
    assert_eq!(dl.status, StatusCode::OK);
    assert!(dl.bytes == bytes, "the asset is the parts in order");
    assert_eq!(s.used(&t).await, size);
    assert_eq!(reserved(&s), 0);
    let list = s.get("/v1/assets/films", &t).await;
    assert_eq!(list.ok()["assets"].as_array().unwrap().len(), 1);
    assert!(staged_files(&s).is_empty(), "staging is gone");

    // Completing again, or asking again with the key, answers the same asset.
    assert_eq!(complete(&s, &t, &id).await.ok(), &asset);
    let again = create(&s, &t, "films", "film-1", size).await;
    assert_eq!(again.ok()["uploadId"], id.as_str());
    assert_eq!(again.body["completed"], asset);
    let got = s.get(&format!("/v1/uploads/{id}"), &t).await;
    assert_eq!(got.ok()["completed"], asset);
    put_part(&s, &t, &id, 1, bytes[..PART].to_vec())
        .await
        .expect_err("CONFLICT");
    s.call(Method::DELETE, &format!("/v1/uploads/{id}"), Some(&t), None)
        .await
        .expect_err("CONFLICT");
    assert_eq!(s.used(&t).await, size, "charged once");
    s.stop().await;
}

#[tokio::test]
async fn the_same_key_finds_the_open_session_with_its_parts() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let first = create(&s, &t, "b", "k1", 10).await.ok().clone();
    let id = first["uploadId"].as_str().unwrap();
    put_part(&s, &t, id, 1, vec![1; 10]).await.ok();
    let again = create(&s, &t, "b", "k1", 10).await;
    assert_eq!(again.ok()["uploadId"], id);
    assert_eq!(part_numbers(&again.body), vec![1]);
    assert_eq!(reserved(&s), 10, "reserved once");
    // An empty file has no parts and completes at once.
    let empty = create(&s, &t, "b", "k0", 0).await.ok().clone();
    let asset = complete(&s, &t, empty["uploadId"].as_str().unwrap()).await;
    assert_eq!(asset.ok()["size"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_key_reused_for_another_upload_is_refused_and_sizes_are_checked_first() {
    let s = Srv::start_native().await;
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
    assert_eq!(reserved(&s), 10);
    s.stop().await;
}

#[tokio::test]
async fn sessions_reserve_and_are_checked_like_single_shot_uploads() {
    let s = Srv::start_with(|c| c.max_upload_bytes = 5000).await;
    let t = s.pro_with_limit(1000).await;
    let a = create(&s, &t, "b", "a", 600).await.ok().clone();
    create(&s, &t, "b", "b", 600)
        .await
        .expect_err("QUOTA_EXCEEDED");
    s.upload(&t, "b", "x", "image/png", vec![0; 500])
        .await
        .expect_err("QUOTA_EXCEEDED");
    create(&s, &t, "b", "c", 6000)
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    s.upload(&t, "b", "x", "image/png", vec![0; 10]).await.ok();
    let r = s
        .call(
            Method::POST,
            "/v1/uploads",
            Some(&t),
            Some(
                json!({"bucketId": "b", "size": 1, "schemaId": "other", "schemaVersion": 1,
                        "idempotencyKey": "d"}),
            ),
        )
        .await;
    r.expect_err("INCOMPATIBLE_BUCKET");
    for bad in [
        json!({"bucketId": "b", "size": 1, "schemaId": "s", "schemaVersion": 1, "idempotencyKey": "no way"}),
        json!({"bucketId": "b", "size": 1, "schemaId": "s", "schemaVersion": 1}),
        json!({"bucketId": "../b", "size": 1, "schemaId": "s", "schemaVersion": 1, "idempotencyKey": "e"}),
        json!({"bucketId": "b", "size": -1, "schemaId": "s", "schemaVersion": 1, "idempotencyKey": "e"}),
    ] {
        s.call(Method::POST, "/v1/uploads", Some(&t), Some(bad))
            .await
            .expect_err("INVALID_ARGUMENT");
    }
    let free = s.user("free", 0).await;
    create(&s, &free, "b", "a", 1)
        .await
        .expect_err("PLAN_REQUIRED");
    assert_eq!(reserved(&s), 600);
    // Aborting releases the reservation: the other upload fits now.
    let id = a["uploadId"].as_str().unwrap();
    put_part(&s, &t, id, 1, vec![3; 600]).await.ok();
    let del = s
        .call(Method::DELETE, &format!("/v1/uploads/{id}"), Some(&t), None)
        .await;
    assert_eq!(del.ok(), &json!({"deleted": true}));
    assert_eq!(reserved(&s), 0);
    assert!(staged_files(&s).is_empty());
    s.get(&format!("/v1/uploads/{id}"), &t)
        .await
        .expect_err("NOT_FOUND");
    complete(&s, &t, id).await.expect_err("NOT_FOUND");
    create(&s, &t, "b", "b", 600).await.ok();
    assert_eq!(s.used(&t).await, 10);
    s.stop().await;
}

#[tokio::test]
async fn parts_have_exact_sizes_and_sessions_have_owners() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", PART as u64 + 5).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    // Wrong lengths, numbers outside the upload, malformed numbers.
    put_part(&s, &t, &id, 2, vec![0; 4])
        .await
        .expect_err("INVALID_ARGUMENT");
    put_part(&s, &t, &id, 2, vec![0; 6])
        .await
        .expect_err("INVALID_ARGUMENT");
    put_part(&s, &t, &id, 1, vec![0; 5])
        .await
        .expect_err("INVALID_ARGUMENT");
    put_part(&s, &t, &id, 0, vec![0; 5])
        .await
        .expect_err("INVALID_ARGUMENT");
    put_part(&s, &t, &id, 3, vec![0; 5])
        .await
        .expect_err("INVALID_ARGUMENT");
    s.send(
        s.req(Method::PUT, &format!("/v1/uploads/{id}/parts/x"), Some(&t))
            .body(vec![0u8; 5]),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(vec![1u8; 5])]);
    s.send(
        s.req(Method::PUT, &format!("/v1/uploads/{id}/parts/2"), Some(&t))
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    assert!(s.get(&format!("/v1/uploads/{id}"), &t).await.ok()["parts"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(staged_files(&s).is_empty(), "refused parts leave no file");
    // Another user's session does not exist for them.
    let other = s.pro().await;
    s.get(&format!("/v1/uploads/{id}"), &other)
        .await
        .expect_err("NOT_FOUND");
    put_part(&s, &other, &id, 2, vec![0; 5])
        .await
        .expect_err("NOT_FOUND");
    complete(&s, &other, &id).await.expect_err("NOT_FOUND");
    s.call(
        Method::DELETE,
        &format!("/v1/uploads/{id}"),
        Some(&other),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    s.get("/v1/uploads/not-an-id", &t)
        .await
        .expect_err("NOT_FOUND");
    // The owner's session is untouched.
    put_part(&s, &t, &id, 2, vec![0; 5]).await.ok();
    s.stop().await;
}

#[tokio::test]
async fn an_untouched_session_expires_and_gives_its_bytes_back() {
    let s = Srv::start_with(|c| {
        c.upload_ttl_secs = 1;
        c.sweep_interval_secs = 1;
    })
    .await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", 20).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    put_part(&s, &t, &id, 1, vec![1; 20]).await.ok();
    assert_eq!(staged_files(&s).len(), 1);
    let mut gone = false;
    for _ in 0..100 {
        if reserved(&s) == 0 && staged_files(&s).is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the sweep released the reservation and deleted the part"
    );
    s.get(&format!("/v1/uploads/{id}"), &t)
        .await
        .expect_err("NOT_FOUND");
    complete(&s, &t, &id).await.expect_err("NOT_FOUND");
    // The key is free again: a new session starts.
    let fresh = create(&s, &t, "b", "k", 20).await;
    assert_ne!(fresh.ok()["uploadId"], id.as_str());
    assert_eq!(s.used(&t).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn lost_part_and_completion_answers_are_retried_safely() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", 30).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    s.call(
        Method::PUT,
        "/v1/dev/faults",
        Some(&t),
        Some(json!({"uploadResponseLost": 2})),
    )
    .await
    .ok();
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
    assert_eq!(reserved(&s), 0);
    s.stop().await;
}

#[tokio::test]
async fn mixed_concurrent_uploads_near_the_limit_never_overshoot() {
    let s = Srv::start_native().await;
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
    assert_eq!(reserved(&s), 0, "every reservation settled or released");
    s.stop().await;
}

#[tokio::test]
async fn concurrent_repeats_of_one_key_store_once() {
    let s = Srv::start_native().await;
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
    assert_eq!(reserved(&s), 10, "the one session's reservation");
    s.stop().await;
}

#[tokio::test]
async fn nothing_changes_an_upload_while_it_is_being_completed() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", 10).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    put_part(&s, &t, &id, 1, vec![1; 10]).await.ok();
    // What a running completion records (its object is pending).
    s.sql()
        .execute(
            "INSERT INTO pending_objects (object_key, user_id, upload_id, created_at) \
             SELECT ?1, user_id, upload_id, 0 FROM uploads WHERE upload_id = ?2",
            ["0".repeat(32), id.clone()],
        )
        .unwrap();
    put_part(&s, &t, &id, 1, vec![2; 10])
        .await
        .expect_err("CONFLICT");
    complete(&s, &t, &id).await.expect_err("CONFLICT");
    s.call(Method::DELETE, &format!("/v1/uploads/{id}"), Some(&t), None)
        .await
        .expect_err("CONFLICT");
    s.sql().execute("DELETE FROM pending_objects", []).unwrap();
    let asset = complete(&s, &t, &id).await.ok().clone();
    let dl = s.send(s.http.get(asset["url"].as_str().unwrap())).await;
    assert_eq!(dl.bytes, vec![1; 10]);
    s.stop().await;
}

#[tokio::test]
async fn a_part_still_streaming_when_its_upload_is_aborted_is_not_found() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let session = create(&s, &t, "b", "k", 1_000_000).await.ok().clone();
    let id = session["uploadId"].as_str().unwrap().to_string();
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /v1/uploads/{id}/parts/1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t}\r\n\
         Connection: close\r\nContent-Length: 1000000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&vec![7u8; 400_000]).await.unwrap();
    sock.flush().await.unwrap();
    // Wait (bounded) until the part's temporary file exists, then abort.
    for _ in 0..200 {
        if !staged_files(&s).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(staged_files(&s).len(), 1, "the part is streaming to disk");
    s.call(Method::DELETE, &format!("/v1/uploads/{id}"), Some(&t), None)
        .await
        .ok();
    let _ = sock.write_all(&vec![7u8; 600_000]).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        sock.read_to_end(&mut answer),
    )
    .await
    .expect("the part answers");
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("NOT_FOUND"), "{answer}");
    assert!(staged_files(&s).is_empty(), "nothing is left on disk");
    assert_eq!(reserved(&s), 0);
    s.stop().await;
}
