//! The `monodit-server` binary: serve with a ready file, `user add`, graceful SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_monodit-server");

/// Starts the binary on a free port; returns the child and its base URL.
fn spawn_server(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    let ready = dir.join("ready");
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--bind", "127.0.0.1", "--db"])
        .arg(dir.join("m.sqlite"))
        .arg("--objects")
        .arg(dir.join("objects"))
        .arg("--ready-file")
        .arg(&ready)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready.exists() || std::fs::read_to_string(&ready).unwrap().is_empty() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = std::fs::read_to_string(&ready).unwrap().trim().to_string();
    (child, base)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Uploads stream: a 256 MiB upload raises the server's peak memory by far less than its size.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn upload_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_server(dir.path(), &["--dev"]);
    let before = peak_rss_kb(child.id());
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 256;
    // Generated on the fly: the client holds one chunk at a time as well.
    let body =
        futures::stream::iter((0..CHUNKS).map(|i| Ok::<_, std::io::Error>(vec![i as u8; CHUNK])));
    let r = reqwest::Client::new()
        .post(format!(
            "{base}/v1/assets/big?name=big.bin&schemaId=s&schemaVersion=1"
        ))
        .bearer_auth("dev-demo-token")
        .header("content-length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: serde_json::Value = r.json().await.unwrap();
    assert_eq!(info["size"], (CHUNK * CHUNKS) as u64);
    let grown_mb = peak_rss_kb(child.id()).saturating_sub(before) / 1024;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        grown_mb < 96,
        "peak memory grew by {grown_mb} MiB for a 256 MiB upload"
    );
}

#[tokio::test]
async fn serve_writes_the_ready_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.sqlite");
    let out = Command::new(BIN)
        .args(["user", "add", "--plan", "pro", "--addons", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("mdt_"));

    let ready = dir.path().join("ready");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--allow-origin",
            "*",
            "--db",
        ])
        .arg(&db)
        .arg("--objects")
        .arg(dir.path().join("objects"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready.exists() || std::fs::read_to_string(&ready).unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become ready"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = std::fs::read_to_string(&ready).unwrap().trim().to_string();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert_eq!(
        first_line.trim(),
        format!("monodit-server listening on {base}")
    );

    let http = reqwest::Client::new();
    let me: serde_json::Value = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["plan"], "pro");
    assert_eq!(me["limitBytes"], 10_000_000_000u64);
    // Not in dev mode: no dev routes.
    let dev = http
        .post(format!("{base}/v1/dev/users"))
        .json(&serde_json::json!({"plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), 404);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("server ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful exit: {status}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["user", "add", "--plan", "gold", "--db"])
        .arg(dir.path().join("m.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown plan"));
    let out = Command::new(BIN)
        .args([
            "serve",
            "--port",
            "0",
            "--allow-origin",
            "example.com/path",
            "--db",
        ])
        .arg(dir.path().join("m.sqlite"))
        .arg("--objects")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an origin"));
}

/// The edge flags reach the server: with `--header-timeout-secs 1` an idle connection is
/// closed, and a zero timeout is refused at start.
#[tokio::test]
async fn serve_takes_the_timeout_and_connection_flags() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_server(
        dir.path(),
        &[
            "--header-timeout-secs",
            "1",
            "--body-timeout-secs",
            "1",
            "--max-connections",
            "8",
        ],
    );
    let mut idle = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), idle.read_to_end(&mut buf)).await;
    let health = reqwest::get(format!("{base}/v1/health"))
        .await
        .map(|r| r.status());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        closed.is_ok(),
        "an idle connection outlived --header-timeout-secs"
    );
    assert_eq!(health.unwrap(), 200);
    let out = Command::new(BIN)
        .args(["serve", "--port", "0", "--header-timeout-secs", "0", "--db"])
        .arg(dir.path().join("m2.sqlite"))
        .arg("--objects")
        .arg(dir.path().join("o2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("header-timeout-secs"));
}

/// The campaign's case: a server limited to 256 file descriptors, 300 idle sockets from one
/// client. The cap keeps descriptors for SQLite and the header timeout frees slots, so
/// `/v1/health` still answers and the idle sockets are closed.
#[cfg(unix)]
#[tokio::test]
async fn idle_sockets_past_the_descriptor_limit_do_not_take_the_server_down() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(["serve", "--dev", "--port", "0", "--bind", "127.0.0.1"])
        .args(["--header-timeout-secs", "1", "--db"])
        .arg(dir.path().join("m.sqlite"))
        .arg("--objects")
        .arg(dir.path().join("objects"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(&ready).map_or(true, |s| s.is_empty()) {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = std::fs::read_to_string(&ready).unwrap().trim().to_string();
    let addr = base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..300 {
        // Connections past the cap complete in the kernel's backlog (or are refused when
        // it is full); either way the client holds no server descriptor.
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        {
            idle.push(s);
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let health = client.get(format!("{base}/v1/health")).send().await;
    let mut closed = 0;
    for s in idle.iter_mut().take(20) {
        let mut buf = Vec::new();
        if tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.expect("/v1/health answers").status(), 200);
    assert_eq!(closed, 20, "idle sockets were kept open");
}
