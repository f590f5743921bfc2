//! Assets (r2-assets): streaming upload, list, signed downloads, delete, safe serving.

use crate::support::*;
use reqwest::StatusCode;

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
