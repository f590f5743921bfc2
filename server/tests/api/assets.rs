//! Assets (r2-assets): streaming upload, list, signed downloads, delete, safe serving.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn upload_list_download_delete() {
    let s = Srv::start().await;
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
async fn html_and_svg_are_attachments_that_cannot_run_script() {
    let s = Srv::start().await;
    let t = s.pro().await;
    for (name, ct) in [
        ("x.html", "text/html"),
        ("x.svg", "image/svg+xml"),
        ("x.js", "text/javascript"),
    ] {
        let up = s
            .upload(&t, "b", name, ct, b"<script>alert(1)</script>".to_vec())
            .await;
        let dl = s.send(s.http.get(up.ok()["url"].as_str().unwrap())).await;
        assert_eq!(dl.status, StatusCode::OK);
        assert_eq!(
            dl.header("content-type"),
            Some("application/octet-stream"),
            "{ct}"
        );
        assert!(
            dl.header("content-disposition")
                .unwrap()
                .starts_with("attachment"),
            "{ct}"
        );
        assert_eq!(dl.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(dl.header("content-security-policy"), Some("sandbox"));
    }
    s.stop().await;
}

#[tokio::test]
async fn path_like_file_names_are_metadata_only() {
    let s = Srv::start().await;
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
    for f in files_under(s.dir.path()) {
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
    let s = Srv::start().await;
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
async fn large_uploads_stream_through_multipart_intact() {
    let s = Srv::start().await;
    let t = s.pro().await;
    // 12 MiB: larger than the buffered path, several 5 MiB parts.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let up = s
        .upload(
            &t,
            "big",
            "big.bin",
            "application/octet-stream",
            data.clone(),
        )
        .await;
    assert_eq!(up.ok()["size"], data.len());
    let dl = s.send(s.http.get(up.body["url"].as_str().unwrap())).await;
    assert_eq!(dl.status, StatusCode::OK);
    assert!(dl.bytes == data, "downloaded bytes equal the upload");
    assert_eq!(s.used(&t).await, data.len() as u64);
    s.stop().await;
}

#[tokio::test]
async fn uploads_need_a_length_a_contract_and_a_sane_type() {
    let s = Srv::start_with(|c| c.max_upload_bytes = 1000).await;
    let t = s.pro().await;
    s.upload(&t, "b", "a", "application/octet-stream", vec![0; 1001])
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    s.upload(&t, "b", "a", "not a mime", vec![0; 1])
        .await
        .expect_err("INVALID_ARGUMENT");
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
    assert_eq!(s.used(&t).await, 1);
    let reserved: i64 = s
        .sql()
        .query_row("SELECT SUM(reserved_bytes) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reserved, 0);
    let _ = json!(null);
    s.stop().await;
}

#[tokio::test]
async fn downloads_answer_byte_ranges_for_media_seeking() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let data: Vec<u8> = (0..100u8).collect();
    let up = s
        .upload(&t, "v", "clip.mp4", "video/mp4", data.clone())
        .await;
    let url = up.ok()["url"].as_str().unwrap().to_string();
    let part = s
        .send(s.http.get(&url).header("range", "bytes=10-19"))
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes, data[10..20].to_vec());
    assert_eq!(part.header("content-range"), Some("bytes 10-19/100"));
    assert_eq!(part.header("accept-ranges"), Some("bytes"));
    let tail = s.send(s.http.get(&url).header("range", "bytes=-5")).await;
    assert_eq!(tail.bytes, data[95..].to_vec());
    let ignored = s.send(s.http.get(&url).header("range", "bytes=500-")).await;
    assert_eq!(ignored.status, StatusCode::OK);
    assert_eq!(ignored.bytes, data);
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_upload_gets_its_reservation_back() {
    use tokio::io::AsyncWriteExt;
    let s = Srv::start().await;
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
