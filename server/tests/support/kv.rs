//! `ctx.kv` helpers shared by the conformance and native tests.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Percent-encodes a key as one path segment (everything but unreserved characters), the
/// way a client is expected to send it.
pub fn enc(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn kput(s: &Srv, t: &str, plugin: &str, key: &str, value: Value) -> Resp {
    s.call(
        Method::PUT,
        &format!("/v1/kv/{plugin}/{}", enc(key)),
        Some(t),
        Some(json!({ "value": value })),
    )
    .await
}

pub async fn kv_bytes(s: &Srv, t: &str) -> u64 {
    s.get("/v1/usage", t).await.ok()["kvBytes"]
        .as_u64()
        .unwrap()
}
