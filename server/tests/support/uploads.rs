//! Resumable upload helpers shared by the conformance and native tests.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const PART: usize = 8 * 1024 * 1024;

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

pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub fn part_numbers(session: &Value) -> Vec<u64> {
    session["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partNumber"].as_u64().unwrap())
        .collect()
}
