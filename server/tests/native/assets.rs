//! Assets (r2-assets): streaming upload, list, signed downloads, delete, safe serving.

use crate::native_support::files_under;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn upload_list_download_delete() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3, 4];
    let up = s
        .upload(&t, "gallery-1", "cat.png", "image/png", png.clone())
        .await;
    let a = up.ok().clone();
    assert_eq!(a["name"], "cat.png");
    assert_eq!(a["size"], 8);
    assert_eq!(a["contentType"], "image/png");
    let key = a["objectKey"].as_str().unwrap();
    assert_eq!(key.len(), 32);

    let list = s.get("/v1/assets/gallery-1", &t).await;
    assert_eq!(list.ok()["version"], 1);
    assert_eq!(list.body["assets"][0]["objectKey"], key);

    // The URL works without the bearer token, as an <img src> would load it.
    let dl = s.send(s.http.get(a["url"].as_str().unwrap())).await;
    assert_eq!(dl.status, StatusCode::OK);
    assert_eq!(dl.bytes, png);
    assert_eq!(dl.header("content-type"), Some("image/png"));
    assert_eq!(dl.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(dl.header("content-security-policy"), Some("sandbox"));
    assert_eq!(
        dl.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    assert!(dl
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));

    s.call(
        Method::DELETE,
        &format!("/v1/assets/gallery-1/{key}"),
        Some(&t),
        None,
    )
    .await
    .ok();
    let list = s.get("/v1/assets/gallery-1", &t).await;
    assert_eq!(
        list.ok()["version"],
        2,
        "the change counter moves on delete"
    );
    assert!(list.body["assets"].as_array().unwrap().is_empty());
    s.send(s.http.get(a["url"].as_str().unwrap()))
        .await
        .expect_err("NOT_FOUND");
    s.call(
        Method::DELETE,
        &format!("/v1/assets/gallery-1/{key}"),
        Some(&t),
        None,
    )
    .await
    .expect_err("NOT_FOUND");
    assert!(
        files_under(&s.objects_dir()).is_empty(),
        "the object left the store"
    );
    s.stop().await;
}

#[tokio::test]
async fn path_like_file_names_are_metadata_only() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    for raw in [
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/abs/path.png",
        "",
        "..",
        "a\u{0}b.txt",
    ] {
        let up = s
            .upload(&t, "names", raw, "text/plain", b"x".to_vec())
            .await;
        let name = up.ok()["name"].as_str().unwrap().to_string();
        assert!(
            !name.contains('/') && !name.contains('\\') && !name.starts_with('.'),
            "{raw:?} -> {name:?}"
        );
        assert!(!name.is_empty());
    }
    let list = s.get("/v1/assets/names", &t).await;
    assert_eq!(list.ok()["assets"][0]["name"], "passwd");
    // Every object sits under the store's own generated keys, nowhere else.
    for f in files_under(s.dir().path()) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if f.starts_with(s.objects_dir()) {
            assert!(
                name.len() == 32 && name.chars().all(|c| c.is_ascii_hexdigit()),
                "{f:?}"
            );
        } else {
            assert!(name.starts_with("db.sqlite"), "unexpected file {f:?}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn tampered_or_expired_signatures_are_forbidden() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let up = s.upload(&t, "b", "a.png", "image/png", vec![1, 2, 3]).await;
    let url = up.ok()["url"].as_str().unwrap().to_string();
    let key = up.body["objectKey"].as_str().unwrap().to_string();
    let (path, query) = url.split_once('?').unwrap();
    let exp: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    // The answer carries the same expiry as a field (epoch ms), so clients never parse it.
    assert_eq!(up.body["urlExpiresAt"].as_u64(), Some(exp * 1000));
    let sig = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap()
        .to_string();
    let mut flipped = sig.clone();
    flipped.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    for bad in [
        format!("{path}?exp={exp}&sig={flipped}"),
        format!("{path}?exp={}&sig={sig}", exp + 3600),
        format!("{path}?exp={exp}"),
        format!("{path}?exp=soon&sig={sig}"),
        format!("{path}?exp={exp}&sig=not-hex"),
        path.to_string(),
        format!(
            "{}/v1/objects/{}?exp={exp}&sig={sig}",
            s.base,
            "0".repeat(32)
        ),
    ] {
        s.send(s.http.get(&bad)).await.expect_err("FORBIDDEN");
    }
    // A correctly signed URL whose time has passed.
    let secret: String = s
        .sql()
        .query_row(
            "SELECT value FROM settings WHERE key = 'url_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let signer = monodit_server::objects::Signer::new(hex::decode(secret).unwrap());
    let past = 1_000_000;
    let expired = format!(
        "{}/v1/objects/{key}?exp={past}&sig={}",
        s.base,
        signer.sign(&key, past)
    );
    let r = s.send(s.http.get(&expired)).await;
    r.expect_err("FORBIDDEN");
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
    s.stop().await;
}

#[tokio::test]
async fn uploads_need_a_length_a_contract_and_a_sane_type() {
    let s = Srv::start_with(|c| c.max_upload_bytes = 1000).await;
    let t = s.pro().await;
    s.upload(&t, "b", "a", "application/octet-stream", vec![0; 1001])
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    // An unparsable type is stored (and served) as application/octet-stream.
    let odd = s.upload(&t, "odd", "a", "not a mime", vec![0; 1]).await;
    assert_eq!(odd.ok()["contentType"], "application/octet-stream");
    // Missing schema.
    let r = s
        .send(
            s.req(Method::POST, "/v1/assets/b?name=a", Some(&t))
                .body(vec![1u8]),
        )
        .await;
    r.expect_err("INVALID_ARGUMENT");
    // A streamed body with no Content-Length.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(vec![1u8, 2, 3])]);
    let r = s
        .send(
            s.req(
                Method::POST,
                "/v1/assets/b?schemaId=gallery.assets&schemaVersion=1",
                Some(&t),
            )
            .body(reqwest::Body::wrap_stream(stream)),
        )
        .await;
    r.expect_err("INVALID_ARGUMENT");
    // Another contract on an existing asset bucket.
    s.upload(&t, "b", "a", "image/png", vec![1]).await.ok();
    let r = s
        .send(
            s.req(
                Method::POST,
                "/v1/assets/b?schemaId=other&schemaVersion=1",
                Some(&t),
            )
            .body(vec![1u8]),
        )
        .await;
    r.expect_err("INCOMPATIBLE_BUCKET");
    assert_eq!(s.used(&t).await, 2);
    let reserved: i64 = s
        .sql()
        .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reserved, 0);
    let _ = json!(null);
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_upload_gets_its_reservation_back() {
    use tokio::io::AsyncWriteExt;
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/assets/cut?name=a.bin&schemaId=gallery.assets&schemaVersion=1 HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: Bearer {t}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 5000000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&vec![7u8; 2_000_000]).await.unwrap();
    sock.flush().await.unwrap();
    // Wait (bounded) until the server has reserved the upload's bytes, then hang up.
    let reserved = |s: &Srv| -> i64 {
        s.sql()
            .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
            .unwrap()
    };
    for _ in 0..200 {
        if reserved(&s) == 5_000_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(reserved(&s), 5_000_000);
    drop(sock);
    for _ in 0..400 {
        if reserved(&s) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(reserved(&s), 0, "the reservation is released");
    assert_eq!(s.used(&t).await, 0);
    assert!(s.get("/v1/assets/cut", &t).await.ok()["assets"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        files_under(&s.objects_dir()).is_empty(),
        "no partial object left"
    );
    s.stop().await;
}

/// A single-shot upload with an `Idempotency-Key`.
async fn upload_keyed(s: &Srv, token: &str, bucket: &str, key: &str, bytes: Vec<u8>) -> Resp {
    s.send(keyed_request(s, token, bucket, key, bytes)).await
}

fn keyed_request(
    s: &Srv,
    token: &str,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> reqwest::RequestBuilder {
    s.req(Method::POST, &format!("/v1/assets/{bucket}"), Some(token))
        .query(&[
            ("name", "photo.png"),
            ("schemaId", "gallery.assets"),
            ("schemaVersion", "1"),
        ])
        .header("content-type", "image/png")
        .header("idempotency-key", key)
        .body(bytes)
}

fn asset_count(s: &Srv) -> i64 {
    s.sql()
        .query_row("SELECT COUNT(*) FROM assets", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_repeated_idempotency_key_stores_and_charges_once() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let first = upload_keyed(&s, &t, "g", "up-1", vec![5; 300]).await;
    let first = first.ok().clone();
    let again = upload_keyed(&s, &t, "g", "up-1", vec![5; 300]).await;
    assert_eq!(asset_of(again.ok()), asset_of(&first), "the same AssetInfo");
    assert_eq!(s.used(&t).await, 300, "charged once");
    assert_eq!(asset_count(&s), 1);
    assert_eq!(files_under(&s.objects_dir()).len(), 1, "stored once");
    let list = s.get("/v1/assets/g", &t).await;
    assert_eq!(list.ok()["version"], 1, "the repeat changed nothing");
    // Another key is another upload; the same key of another user is that user's own.
    let other = upload_keyed(&s, &t, "g", "up-2", vec![5; 300]).await;
    assert_ne!(other.ok()["objectKey"], first["objectKey"]);
    let t2 = s.pro().await;
    let theirs = upload_keyed(&s, &t2, "g", "up-1", vec![6; 10]).await;
    assert_ne!(theirs.ok()["objectKey"], first["objectKey"]);
    assert_eq!(s.used(&t).await, 600);
    assert_eq!(s.used(&t2).await, 10);
    // Keys have a grammar.
    for bad in ["", "a b", "a/b", "ä", &"k".repeat(129)] {
        let r = s
            .send(
                s.req(Method::POST, "/v1/assets/g", Some(&t))
                    .query(&[("schemaId", "gallery.assets"), ("schemaVersion", "1")])
                    .header(
                        "idempotency-key",
                        reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
                    )
                    .body(vec![1u8]),
            )
            .await;
        r.expect_err("INVALID_ARGUMENT");
    }
    // Two keys on one request are ambiguous.
    let r = s
        .send(keyed_request(&s, &t, "g", "up-1", vec![1]).header("idempotency-key", "up-9"))
        .await;
    r.expect_err("INVALID_ARGUMENT");
    assert_eq!(s.used(&t).await, 600);
    s.stop().await;
}

#[tokio::test]
async fn a_repeat_while_the_first_still_streams_is_conflict() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let total = 3_000_000usize;
    let head = format!(
        "POST /v1/assets/slow?name=a.bin&schemaId=gallery.assets&schemaVersion=1 HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: Bearer {t}\r\nContent-Type: application/octet-stream\r\n\
         Idempotency-Key: slow-1\r\nConnection: close\r\nContent-Length: {total}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&vec![7u8; 1_000_000]).await.unwrap();
    sock.flush().await.unwrap();
    let reserved = |s: &Srv| -> i64 {
        s.sql()
            .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
            .unwrap()
    };
    for _ in 0..200 {
        if reserved(&s) == total as i64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(reserved(&s), total as i64, "the first upload is streaming");
    upload_keyed(&s, &t, "slow", "slow-1", vec![7; total])
        .await
        .expect_err("CONFLICT");
    sock.write_all(&vec![7u8; total - 1_000_000]).await.unwrap();
    sock.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        sock.read_to_end(&mut answer),
    )
    .await
    .expect("the first upload answers")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let again = upload_keyed(&s, &t, "slow", "slow-1", vec![7; total]).await;
    assert_eq!(again.ok()["size"], total);
    assert!(answer.contains(again.body["objectKey"].as_str().unwrap()));
    assert_eq!(s.used(&t).await, total as u64);
    assert_eq!(asset_count(&s), 1);
    assert_eq!(reserved(&s), 0);
    s.stop().await;
}

#[tokio::test]
async fn a_lost_upload_answer_is_retried_without_a_second_asset() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    s.set_faults(&t, json!({"uploadResponseLost": 1})).await;
    // The server stores the asset, then drops the connection before any answer.
    let lost = keyed_request(&s, &t, "g", "lost-1", vec![9; 1234])
        .send()
        .await;
    assert!(lost.is_err(), "no answer arrives: {lost:?}");
    assert_eq!(asset_count(&s), 1, "the work was committed");
    assert_eq!(s.used(&t).await, 1234);
    // The client retries with the same key and gets the asset the first attempt made.
    let retry = upload_keyed(&s, &t, "g", "lost-1", vec![9; 1234]).await;
    let key: String = s
        .sql()
        .query_row("SELECT object_key FROM assets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(retry.ok()["objectKey"], key);
    assert_eq!(asset_count(&s), 1);
    assert_eq!(s.used(&t).await, 1234, "charged once");
    // The fault counted down: the next upload answers normally.
    upload_keyed(&s, &t, "g", "lost-2", vec![1]).await.ok();
    // On the wire, a lost answer is a closed connection with not one byte sent back.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.set_faults(&t, json!({"uploadResponseLost": 1})).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/assets/g?schemaId=gallery.assets&schemaVersion=1 HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {t}\r\nContent-Length: 3\r\n\r\nabc"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        sock.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .ok();
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert_eq!(asset_count(&s), 3, "and still stored the upload");
    s.stop().await;
}

#[tokio::test]
async fn hostile_content_types_are_served_as_attachments() {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let html = b"<html><script>alert(document.domain)</script></html>".to_vec();
    for (sent, stored, inline) in [
        ("image/png;,text/html", "application/octet-stream", false),
        ("image/png,text/html", "application/octet-stream", false),
        ("text/html, image/png", "application/octet-stream", false),
        ("image/png;;,text/html", "application/octet-stream", false),
        ("text/html;image/png", "application/octet-stream", false),
        ("TEXT/HTML", "text/html", false),
        ("  text/html;charset=utf-8 ", "text/html", false),
        (
            "text/html ; charset=utf-8",
            "application/octet-stream",
            false,
        ),
        ("\ttext/html", "text/html", false),
        ("image/svg+xml; charset=utf-8", "image/svg+xml", false),
        ("not a type", "application/octet-stream", false),
        ("IMAGE/PNG; q=1", "image/png", true),
        ("image/png ; q=1", "application/octet-stream", false),
        ("video/mp4; codecs=\"avc1\"", "video/mp4", true),
    ] {
        let up = s.upload(&t, "ct", "x.png", sent, html.clone()).await;
        assert_eq!(up.ok()["contentType"], stored, "{sent:?}");
        let dl = s.send(s.http.get(up.body["url"].as_str().unwrap())).await;
        assert_eq!(dl.status, StatusCode::OK);
        let disposition = dl.header("content-disposition").unwrap().to_string();
        let served = dl.header("content-type").unwrap().to_string();
        if inline {
            assert!(disposition.starts_with("inline"), "{sent:?}");
            assert_eq!(served, stored, "{sent:?}");
        } else {
            assert!(disposition.starts_with("attachment"), "{sent:?}");
            assert_eq!(served, "application/octet-stream", "{sent:?}");
        }
    }
    // A row stored before types were normalised is judged by its normalised type too.
    let up = s
        .upload(&t, "ct", "old.png", "image/png", html.clone())
        .await;
    let key = up.ok()["objectKey"].as_str().unwrap().to_string();
    s.sql()
        .execute(
            "UPDATE assets SET content_type = 'image/png;,text/html' WHERE object_key = ?1",
            [&key],
        )
        .unwrap();
    let dl = s.send(s.http.get(up.body["url"].as_str().unwrap())).await;
    assert!(dl
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(dl.header("content-type"), Some("application/octet-stream"));
    s.stop().await;
}

#[tokio::test]
async fn browsers_may_send_an_idempotency_key_cross_origin() {
    let s = Srv::start_native().await;
    let pre = s
        .send(
            s.req(Method::OPTIONS, "/v1/assets/g", None)
                .header("origin", "http://app.test")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type,idempotency-key",
                ),
        )
        .await;
    assert_eq!(pre.status, StatusCode::OK);
    let allowed = pre
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    s.stop().await;
}
