//! Resumable uploads (`/v1/uploads`): sessions, parts, completion, abort, expiry, lost answers.

use crate::native_support::files_under;
use crate::support::uploads::*;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn reserved(s: &Srv) -> i64 {
    s.sql()
        .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
        .unwrap()
}

/// Files under the server's staging directory (`<db>.staging`).
fn staged_files(s: &Srv) -> Vec<std::path::PathBuf> {
    files_under(&s.dir().path().join("db.staging"))
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
    assert_eq!(asset_of(complete(&s, &t, &id).await.ok()), asset_of(&asset));
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
