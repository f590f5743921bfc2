//! The connection edge (src/serve.rs): slow, idle and stalled clients are cut off by the
//! header and body timeouts, the connection cap holds, and the server keeps answering.
//! Short timeouts in the test config; every wait is bounded.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a test waits for the server to act on a timeout (the timeouts here are 1–2 s).
const PATIENCE: Duration = Duration::from_secs(15);

async fn connect(s: &Srv) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Reads until the server closes the socket; returns what it sent. Panics if it is still
/// open after [`PATIENCE`].
async fn until_closed(sock: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: the server kept the connection open");
    got
}

/// Sends the head of a 900 kB upload to bucket `g` (a user with a 1 MB limit), no body yet.
async fn begin_900kb_upload(s: &Srv, token: &str) -> TcpStream {
    let mut sock = connect(s).await;
    let head = format!(
        "POST /v1/assets/g?name=a.bin&schemaId=gallery.assets&schemaVersion=1 HTTP/1.1\r\n\
         Host: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 900000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock
}

/// The server answered the cut-off upload on `sock` with a coded 4xx and closed it, stored
/// nothing and holds no reservation: an upload of `fits` bytes then succeeds as the only asset.
async fn cut_off_and_released(s: &Srv, t: &str, sock: &mut TcpStream, what: &str, fits: usize) {
    let answer = until_closed(sock, what).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "answer: {text}");
    assert!(text.contains("\"code\":"), "answer: {text}");
    s.upload(t, "g", "b.bin", "application/octet-stream", vec![1u8; fits])
        .await
        .ok();
    let list = s.get("/v1/assets/g", t).await;
    let assets = list.ok()["assets"].as_array().unwrap().clone();
    assert_eq!(assets.len(), 1, "{assets:?}");
    assert_eq!(assets[0]["name"], "b.bin");
    assert_eq!(s.used(t).await, fits as u64);
}

async fn health_answers(s: &Srv) {
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/v1/health", s.base))
        .send()
        .await
        .expect("/v1/health answers");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_health_answers() {
    let s = Srv::start_with(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
        c.max_connections = 64;
    })
    .await;
    let t = s.pro().await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(connect(&s).await);
    }
    // Slowloris: a request head that never ends.
    let mut slow_head = Vec::new();
    for _ in 0..10 {
        let mut sock = connect(&s).await;
        sock.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .unwrap();
        slow_head.push(sock);
    }
    // A body that stops after a few bytes.
    let mut slow_body = Vec::new();
    for _ in 0..5 {
        let mut sock = connect(&s).await;
        let head = format!(
            "PUT /v1/documents/d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\""
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        slow_body.push(sock);
    }
    // Keep-alive connections that go idle after one answered request.
    let mut kept_alive = Vec::new();
    for _ in 0..5 {
        let mut sock = connect(&s).await;
        sock.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        kept_alive.push(sock);
    }
    health_answers(&s).await;
    for sock in &mut idle {
        until_closed(sock, "idle connection").await;
    }
    for sock in &mut slow_head {
        until_closed(sock, "unfinished request head").await;
    }
    for sock in &mut slow_body {
        let answer = until_closed(sock, "stalled body").await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("\"code\":\"TIMEOUT\""), "answer: {text}");
    }
    for sock in &mut kept_alive {
        until_closed(sock, "idle keep-alive connection").await;
    }
    health_answers(&s).await;
    // The stalled document write stored nothing.
    s.get("/v1/documents/d", &t).await.expect_err("NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let s = Srv::start_with(|c| {
        c.header_timeout = Duration::from_secs(2);
        c.max_connections = 4;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&s).await);
    }
    // Served only once the header timeout has freed a slot, so by the time it answers the
    // server has already closed at least one held connection.
    health_answers(&s).await;
    let closed = held
        .iter()
        .filter(|sock| {
            let mut buf = [0u8; 16];
            // An open, silent socket answers WouldBlock; a closed one EOF (or a reset).
            match sock.try_read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            }
        })
        .count();
    assert!(
        closed >= 1,
        "a fifth connection was served while four were held open"
    );
    for sock in &mut held {
        until_closed(sock, "held connection").await;
    }
    s.stop().await;
}

#[test]
fn the_cap_stays_below_the_descriptor_limit() {
    // Configured caps are kept as long as they fit; absurd ones are lowered.
    use monodit_server::serve::{effective_max_connections, fd_limit};
    assert_eq!(effective_max_connections(4), 4);
    assert_eq!(effective_max_connections(0), 1);
    if let Some(limit) = fd_limit() {
        // Two descriptors per connection (socket, object file) and room for SQLite.
        let cap = effective_max_connections(usize::MAX) as u64;
        assert!(cap * 2 < limit, "cap {cap} with {limit} descriptors");
    }
}

#[tokio::test]
async fn a_trickling_upload_is_cut_off_by_the_minimum_rate_and_releases_its_reservation() {
    // Each chunk comes well inside the per-chunk body timeout: only the rate can stop it.
    let s = Srv::start_with(|c| {
        c.body_timeout = Duration::from_secs(5);
        c.body_min_rate = 10_000;
        c.body_rate_window = Duration::from_secs(1);
    })
    .await;
    let t = s.pro_with_limit(1_000_000).await;
    let mut sock = begin_900kb_upload(&s, &t).await;
    // 100 bytes every 200 ms (500 B/s), for at most 40 chunks (8 s): the server gives up first.
    let mut cut = false;
    for _ in 0..40 {
        if sock.write_all(&[7u8; 100]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut probe = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), sock.peek(&mut probe)).await
        {
            if n > 0 {
                cut = true;
                break;
            }
        }
    }
    assert!(
        cut,
        "the server kept reading a 500 B/s body against a 10 kB/s minimum"
    );
    // Nothing stored, nothing held: a 900 kB upload at full speed fits again.
    cut_off_and_released(&s, &t, &mut sock, "trickling upload", 900_000).await;
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_upload_releases_its_reservation() {
    let s = Srv::start_with(|c| {
        c.body_timeout = Duration::from_secs(1);
    })
    .await;
    let t = s.pro_with_limit(1_000_000).await;
    let mut sock = begin_900kb_upload(&s, &t).await;
    sock.write_all(&[7u8; 1000]).await.unwrap();
    // The server gives up on the body; the 900 kB are no longer reserved: a 500 kB upload fits.
    cut_off_and_released(&s, &t, &mut sock, "stalled upload", 500_000).await;
    s.stop().await;
}
