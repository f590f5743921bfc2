//! Crash safety with the real binary: `kill -9` at many points of uploads, parts,
//! completions and deletions, restart on the same database and directories, and check that
//! nothing leaked and nothing is missing.

use crate::native_support::files_under;
use reqwest::Method;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use futures::StreamExt;

const BIN: &str = env!("CARGO_BIN_EXE_monodit-server");
const TOKEN: &str = "dev-demo-token";
const PART: usize = 8 * 1024 * 1024;

/// A server child process, killed (SIGKILL, by PID) when dropped.
struct Proc {
    child: Child,
    base: String,
}

fn spawn(dir: &Path, run: usize) -> Proc {
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(dir.join(format!("log-{run}"))).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--dev",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--db",
        ])
        .arg(dir.join("m.sqlite"))
        .arg("--objects")
        .arg(dir.join("objects"))
        .arg("--staging")
        .arg(dir.join("staging"))
        .arg("--ready-file")
        .arg(&ready)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(&ready).map_or(true, |s| s.trim().is_empty()) {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = std::fs::read_to_string(&ready).unwrap().trim().to_string();
    Proc { child, base }
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A body that trickles out in 128 KiB chunks, so a kill lands mid-stream.
fn slow_body(data: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Vec<u8>> = data.chunks(128 * 1024).map(|c| c.to_vec()).collect();
    let stream = futures::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(3)).await;
        Ok::<_, std::io::Error>(c)
    });
    reqwest::Body::wrap_stream(stream)
}

async fn create_upload(http: &reqwest::Client, base: &str, key: &str, size: usize) -> String {
    let r: serde_json::Value = http
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"bucketId": "crash", "name": "f.bin", "contentType": "application/octet-stream",
               "size": size, "schemaId": "s", "schemaVersion": 1, "idempotencyKey": key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["uploadId"].as_str().expect("a session").to_string()
}

async fn put_part(http: &reqwest::Client, base: &str, id: &str, n: u32, data: Vec<u8>, slow: bool) {
    let len = data.len();
    let body = if slow { slow_body(data) } else { data.into() };
    let r = http
        .put(format!("{base}/v1/uploads/{id}/parts/{n}"))
        .bearer_auth(TOKEN)
        .header("content-length", len.to_string())
        .body(body)
        .send()
        .await;
    if !slow {
        assert_eq!(r.unwrap().status(), 200);
    }
}

/// The invariants after a restart (the start-up sweep has run before the server is ready).
async fn check(dir: &Path, http: &reqwest::Client, base: &str) -> usize {
    let db = rusqlite::Connection::open(dir.join("m.sqlite")).unwrap();
    let keys: std::collections::HashSet<String> = db
        .prepare("SELECT object_key FROM assets")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for f in files_under(&dir.join("objects")) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(keys.contains(&name), "orphan object file {f:?}");
    }
    let parts: std::collections::HashSet<String> = db
        .prepare(
            "SELECT p.upload_id || '/' || p.part_number FROM upload_parts p \
             JOIN uploads u ON u.upload_id = p.upload_id WHERE u.state = 'open'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in ["pending_objects", "doomed_objects"] {
        let n: i64 = db
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} is settled after the start-up sweep");
    }
    let staging = dir.join("staging");
    for f in files_under(&staging) {
        let rel = f
            .strip_prefix(&staging)
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(parts.contains(&rel), "stray staging file {rel}");
    }
    for (used, reserved, assets, open) in db
        .prepare(
            "SELECT used_bytes, reserved_bytes, \
             (SELECT COALESCE(SUM(size), 0) FROM assets a WHERE a.user_id = users.id), \
             (SELECT COALESCE(SUM(size), 0) FROM uploads u WHERE u.user_id = users.id AND u.state = 'open') \
             FROM users",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
    {
        assert_eq!(used, assets, "used bytes equal the listed assets");
        assert_eq!(reserved, open, "reserved bytes equal the open uploads");
    }
    let buckets: Vec<String> = db
        .prepare("SELECT DISTINCT bucket_id FROM assets")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut assets = Vec::new();
    for b in buckets {
        let listed: serde_json::Value = http
            .get(format!("{base}/v1/assets/{b}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assets.extend(listed["assets"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(assets.len(), keys.len());
    for a in &assets {
        let got = http.get(a["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(got.status(), 200, "{a}");
        let body = got.bytes().await.unwrap();
        assert_eq!(body.len() as u64, a["size"].as_u64().unwrap(), "{a}");
    }
    assets.len()
}

/// How many of the server runs `0..=last` logged a sweep that removed something.
fn swept_runs(dir: &Path, last: usize) -> usize {
    (0..=last)
        .filter(|r| {
            std::fs::read_to_string(dir.join(format!("log-{r}")))
                .unwrap_or_default()
                .contains("sweep removed unreferenced data")
        })
        .count()
}

#[cfg(unix)]
#[tokio::test]
async fn kill_9_at_any_point_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = spawn(dir.path(), 0);
    // Kill points: after these delays into each operation (bounded: 6 operations x 3).
    let delays = [15u64, 60, 140];
    let mut run = 0;
    let mut listed = 0;
    for op in 0..6 {
        for (i, delay) in delays.iter().enumerate() {
            let base = server.base.clone();
            let tag = format!("{op}-{i}");
            // Set-up that must be answered before the kill.
            let prepared = match op {
                3 => {
                    // One 3 MiB part: assembled into the store as a multipart write.
                    let size = 3 * 1024 * 1024;
                    let id = create_upload(&http, &base, &format!("c{tag}"), size).await;
                    put_part(&http, &base, &id, 1, bytes_of(size, op as u8), false).await;
                    id
                }
                4 => {
                    let r: serde_json::Value = http
                        .post(format!(
                            "{base}/v1/assets/crash?name=d&schemaId=s&schemaVersion=1"
                        ))
                        .bearer_auth(TOKEN)
                        .body(bytes_of(200_000, 9))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    r["objectKey"].as_str().unwrap().to_string()
                }
                5 => {
                    for k in 0..3 {
                        let r = http
                            .post(format!(
                                "{base}/v1/assets/crash-b?name=d&schemaId=s&schemaVersion=1"
                            ))
                            .bearer_auth(TOKEN)
                            .body(bytes_of(300_000, k))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                    }
                    String::new()
                }
                _ => String::new(),
            };
            let (h, b) = (http.clone(), base.clone());
            let work = tokio::spawn(async move {
                match op {
                    // A large single-shot upload (multipart into the store), trickling.
                    0 => {
                        let data = bytes_of(4 * 1024 * 1024, 1);
                        let len = data.len();
                        let _ = h
                            .post(format!(
                                "{b}/v1/assets/crash?name=a&schemaId=s&schemaVersion=1"
                            ))
                            .bearer_auth(TOKEN)
                            .header("content-length", len.to_string())
                            .body(slow_body(data))
                            .send()
                            .await;
                    }
                    // Small single-shot uploads, one after another.
                    1 => {
                        for k in 0..8 {
                            let _ = h
                                .post(format!(
                                    "{b}/v1/assets/crash?name=s&schemaId=s&schemaVersion=1"
                                ))
                                .bearer_auth(TOKEN)
                                .body(bytes_of(50_000 + k, k as u8))
                                .send()
                                .await;
                        }
                    }
                    // A resumable upload's parts, trickling.
                    2 => {
                        let size = PART + 1000;
                        let id = create_upload(&h, &b, &format!("p{tag}"), size).await;
                        let data = bytes_of(size, 2);
                        put_part(&h, &b, &id, 2, data[PART..].to_vec(), true).await;
                        put_part(&h, &b, &id, 1, data[..PART].to_vec(), true).await;
                    }
                    // A completion (assembling the part into the store).
                    3 => {
                        let _ = h
                            .post(format!("{b}/v1/uploads/{prepared}/complete"))
                            .bearer_auth(TOKEN)
                            .send()
                            .await;
                    }
                    // A bucket deletion (rows, then three objects).
                    5 => {
                        let _ = h
                            .request(Method::DELETE, format!("{b}/v1/buckets/r2-assets/crash-b"))
                            .bearer_auth(TOKEN)
                            .send()
                            .await;
                    }
                    // A deletion.
                    _ => {
                        let _ = h
                            .request(Method::DELETE, format!("{b}/v1/assets/crash/{prepared}"))
                            .bearer_auth(TOKEN)
                            .send()
                            .await;
                    }
                }
            });
            tokio::time::sleep(Duration::from_millis(*delay)).await;
            drop(server); // SIGKILL
            let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
            run += 1;
            server = spawn(dir.path(), run);
            listed = check(dir.path(), &http, &server.base).await;
        }
    }
    // The delays above land mid-write on an idle machine; on a loaded one every kill may come
    // before or after a write. So that the sweep is always exercised (bounded: 3 rounds): a
    // part trickling into staging, killed as soon as its file exists, leaves a stray part.
    for round in 0..3 {
        if swept_runs(dir.path(), run) > 0 {
            break;
        }
        let size = PART + 1000;
        let id = create_upload(&http, &server.base, &format!("stray-{round}"), size).await;
        let (h, b, sid) = (http.clone(), server.base.clone(), id.clone());
        let work = tokio::spawn(async move {
            put_part(&h, &b, &sid, 1, bytes_of(size, 4)[..PART].to_vec(), true).await;
        });
        let part_dir = dir.path().join("staging").join(&id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while files_under(&part_dir).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(server); // SIGKILL
        let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
        run += 1;
        server = spawn(dir.path(), run);
        listed = check(dir.path(), &http, &server.base).await;
    }
    // Sessions the kills interrupted resume: asking again with their key finds them (with
    // the parts that made it), the rest is sent, and they complete into the right bytes.
    let size = PART + 1000;
    let data = bytes_of(size, 2);
    let mut resumed = 0;
    for i in 0..delays.len() {
        let r = http
            .post(format!("{}/v1/uploads", server.base))
            .bearer_auth(TOKEN)
            .json(
                &serde_json::json!({"bucketId": "crash", "size": size, "schemaId": "s",
                   "schemaVersion": 1, "idempotencyKey": format!("p2-{i}")}),
            )
            .send()
            .await
            .unwrap();
        let session: serde_json::Value = r.json().await.unwrap();
        let Some(id) = session["uploadId"].as_str() else {
            panic!("{session}");
        };
        if session["parts"].as_array().unwrap().len() < 2 {
            resumed += 1;
        }
        for (n, range) in [(1u32, 0..PART), (2, PART..size)] {
            let stored = session["parts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["partNumber"] == n);
            if !stored {
                put_part(&http, &server.base, id, n, data[range].to_vec(), false).await;
            }
        }
        let asset: serde_json::Value = http
            .post(format!("{}/v1/uploads/{id}/complete", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got = http
            .get(asset["url"].as_str().expect("an asset"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            got.as_ref() == data.as_slice(),
            "a resumed upload is intact"
        );
    }
    assert!(resumed > 0, "some sessions were cut short and resumed");
    check(dir.path(), &http, &server.base).await;
    drop(server);
    let swept = swept_runs(dir.path(), run);
    assert!(
        swept > 0,
        "the kills interrupted writes and the sweep cleaned up after them"
    );
    assert!(listed > 0, "some uploads completed and survived the kills");
}
