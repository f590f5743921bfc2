//! Test harness shared by the `conformance` and `native` test targets: a server per test
//! (or the one named by `MONODIT_CONFORMANCE_URL`), fresh users per test, small HTTP helpers.
//! Native-only access (the SQLite file, the object directory, `Config` tweaks) lives in
//! `native.rs`, which only the `native` target includes, so a conformance test cannot use it.
#![allow(dead_code)]

pub mod kv;
pub mod quota;
pub mod uploads;

use monodit_server::{start, Config, RunningServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The environment variable naming an already-running server for the conformance tests.
pub const CONFORMANCE_URL: &str = "MONODIT_CONFORMANCE_URL";

/// A server under test: either one this test started (native, with its temporary data) or
/// the one at `MONODIT_CONFORMANCE_URL`, shared with other tests and never stopped here.
pub struct Srv {
    pub base: String,
    pub http: reqwest::Client,
    pub(crate) native: Option<Native>,
}

/// A server process this test started in-process, with its temporary directory.
pub(crate) struct Native {
    pub(crate) dir: TempDir,
    pub(crate) server: Option<RunningServer>,
}

/// An answer: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Resp {
    /// Asserts the coded error body and its status.
    pub fn expect_err(&self, code: &str) -> &Self {
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        let status = monodit_core::ErrorCode::parse(code).unwrap().http_status();
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert!(self.body["message"].is_string());
        self
    }

    /// Asserts 200 and returns the body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        &self.body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Srv {
    /// The server of a conformance test: the one at `MONODIT_CONFORMANCE_URL` when that is
    /// set (it must run in dev mode and trust the origin `http://app.test` for CORS; its
    /// database is shared, so every test makes its own users), else a fresh native server.
    pub async fn start() -> Srv {
        match std::env::var(CONFORMANCE_URL) {
            Ok(url) if !url.trim().is_empty() => Srv {
                base: url.trim().trim_end_matches('/').to_string(),
                // A new connection per request. A server in another process closes a
                // connection after answering early without reading the body (413, an
                // Idempotency-Key CONFLICT) but does not say `Connection: close`, so a pooled
                // connection races that close (IncompleteMessage, broken pipe). The suite
                // tests the API, not keep-alive reuse (the native edge tests cover that).
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .expect("an HTTP client"),
                native: None,
            },
            _ => Srv::launch(|_| {}).await,
        }
    }

    /// A fresh native server in a temporary directory (dev mode, trusting
    /// `http://app.test`), after `tweak` adjusted its configuration.
    pub(crate) async fn launch(tweak: impl FnOnce(&mut Config)) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(
            dir.path().join("db.sqlite"),
            dir.path().join("objects").to_string_lossy().to_string(),
        );
        config.allow_origins = vec!["http://app.test".into()];
        tweak(&mut config);
        let server = start(config).await.expect("server starts");
        Srv {
            base: server.base_url.clone(),
            http: reqwest::Client::new(),
            native: Some(Native {
                dir,
                server: Some(server),
            }),
        }
    }

    /// Stops a server this test started; a server named by the environment keeps running.
    pub async fn stop(mut self) {
        if let Some(s) = self.native.as_mut().and_then(|n| n.server.take()) {
            s.stop().await.unwrap();
        }
    }

    /// A fresh user through the dev route.
    pub async fn user(&self, plan: &str, addons: u32) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/dev/users",
                None,
                Some(json!({"plan": plan, "addons": addons})),
            )
            .await;
        r.ok()["token"].as_str().unwrap().to_string()
    }

    /// A fresh Pro user whose storage limit is `limit_bytes` (dev override), so quota paths
    /// are reached with small data.
    pub async fn pro_with_limit(&self, limit_bytes: u64) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/dev/users",
                None,
                Some(json!({"plan": "pro", "limitBytes": limit_bytes})),
            )
            .await;
        r.ok()["token"].as_str().unwrap().to_string()
    }

    pub async fn pro(&self) -> String {
        self.user("pro", 0).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request reaches the server");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            status.as_u16() < 500 || body["code"].is_string(),
            "5xx without a coded body: {status} {body}"
        );
        Resp {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut b = self.http.request(method, url);
        if let Some(t) = token {
            b = b.bearer_auth(t);
        }
        b
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = self.req(method, path, token);
        if let Some(v) = body {
            b = b.json(&v);
        }
        self.send(b).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `PUT /v1/dev/faults` for `token`'s user (dev mode): injects the faults in `faults`.
    pub async fn set_faults(&self, token: &str, faults: Value) {
        self.call(Method::PUT, "/v1/dev/faults", Some(token), Some(faults))
            .await
            .ok();
    }

    pub async fn put_doc(&self, token: &str, bucket: &str, value: Value) -> Resp {
        self.call(
            Method::PUT,
            &format!("/v1/documents/{bucket}"),
            Some(token),
            Some(json!({"value": value, "schemaId": "notes.plaintext", "schemaVersion": 1})),
        )
        .await
    }

    pub async fn upload(
        &self,
        token: &str,
        bucket: &str,
        name: &str,
        ct: &str,
        bytes: Vec<u8>,
    ) -> Resp {
        let b = self
            .req(Method::POST, &format!("/v1/assets/{bucket}"), Some(token))
            .query(&[
                ("name", name),
                ("schemaId", "gallery.assets"),
                ("schemaVersion", "1"),
            ])
            .header("content-type", ct)
            .body(bytes);
        self.send(b).await
    }

    pub async fn used(&self, token: &str) -> u64 {
        self.get("/v1/me", token).await.ok()["usedBytes"]
            .as_u64()
            .unwrap()
    }

    /// Sends `body` as raw JSON text (malformed bodies included) with `method` to `path`.
    pub async fn send_raw_json(&self, method: Method, path: &str, token: &str, body: &str) -> Resp {
        self.send(
            self.req(method, path, Some(token))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn register(
        &self,
        token: &str,
        instance: &str,
        manifest: Value,
        config: Value,
    ) -> Resp {
        self.call(
            Method::PUT,
            &format!("/v1/instances/{instance}"),
            Some(token),
            Some(json!({"kind": "widget", "manifest": manifest, "config": config})),
        )
        .await
    }

    pub async fn coll(&self, token: &str, plugin: &str, coll: &str, op: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            &format!("/v1/collections/{plugin}/{coll}/{op}"),
            Some(token),
            Some(body),
        )
        .await
    }
}

/// Seed 000's notes manifest.
pub fn notes_manifest() -> Value {
    json!({
        "id": "notes",
        "widgetType": "dynamic",
        "storage": {"bindings": [{"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true}]}
    })
}

/// Seed 000's gallery manifest.
pub fn gallery_manifest() -> Value {
    json!({
        "id": "gallery",
        "widgetType": "dynamic",
        "storage": {"bindings": [{"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "assetBucketId", "shareable": true}]}
    })
}

/// Seed 003's forms manifest (plugin id "forms").
pub fn forms_manifest() -> Value {
    json!({
        "id": "forms",
        "storage": {
            "submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]},
            "forms": {"indexes": ["slug"]}
        }
    })
}

/// The asset an answer describes, without its signed URL (whose expiry moves with the clock:
/// two answers for one asset differ there when an expiry step passes between them).
pub fn asset_of(answer: &serde_json::Value) -> serde_json::Value {
    let mut a = answer.clone();
    if let Some(o) = a.as_object_mut() {
        o.remove("url");
        o.remove("urlExpiresAt");
    }
    a
}
