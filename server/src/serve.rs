//! The connection edge: accepts TCP connections, serves each with hyper's HTTP/1.1 server, and
//! bounds what one client can hold.
//!
//! `axum::serve` uses hyper with no timer, so a connection that never finishes its request
//! head, sits idle after a response, or stops sending a body mid-request is kept forever, and
//! enough of them exhaust the process's file descriptors. Here:
//!
//! - hyper's header-read timer runs whenever a connection waits for a request head: when it
//!   opens and again after each response, so it closes slow-header and idle keep-alive
//!   connections alike ([`EdgeLimits::header_timeout`]);
//! - tower-http's request body timeout fails a body that sends nothing for
//!   [`EdgeLimits::body_timeout`] (per chunk, so a large upload on a healthy link finishes);
//!   the handler's error path then runs (an upload releases its quota reservation), and
//!   [`crate::min_rate`] fails one that trickles in slower than [`EdgeLimits::min_rate`];
//! - at most [`EdgeLimits::max_connections`] connections are open at once: past that the
//!   listener is not polled, so further clients wait in the kernel's backlog instead of
//!   taking descriptors from SQLite and object files.
//!
//! Requests hyper cannot parse get the coded JSON body too ([`crate::parse_errors`]).
//!
//! Plain HTTP/1.1 only: browsers never speak cleartext HTTP/2, and one protocol keeps one set
//! of timers.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Descriptors kept free for SQLite (writer, readers, WAL and shm files), the listener and
/// logs, when [`effective_max_connections`] derives the cap from the descriptor limit.
const RESERVED_FDS: u64 = 64;

/// Limits of the connection edge (the `serve` timeouts and connection cap).
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// Time a connection gets to send a complete request head, counted from when it opens or
    /// finishes its previous response (so it is also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// Longest wait for the next chunk of a request body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// The rate every request body must keep.
    pub min_rate: crate::min_rate::MinRate,
}

/// The connection cap actually used: `configured`, lowered so that every connection can hold
/// its socket and one object file with [`RESERVED_FDS`] descriptors to spare under the
/// process's soft `RLIMIT_NOFILE` (unknown limit: `configured`).
pub fn effective_max_connections(configured: usize) -> usize {
    let by_fds = fd_limit()
        .map(|limit| (limit.saturating_sub(RESERVED_FDS) / 2).max(1))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    configured.clamp(1, by_fds.max(1))
}

/// The process's soft `RLIMIT_NOFILE` (`None`: unlimited or unknown).
#[cfg(unix)]
pub fn fd_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The process's descriptor limit: unknown off Unix.
#[cfg(not(unix))]
pub fn fd_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections and waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: EdgeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    if max < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            max,
            "connection cap lowered to fit the file-descriptor limit"
        );
    }
    let permits = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .map_request(move |req: axum::http::Request<_>| {
            req.map(|body| crate::min_rate::MinRateBody::new(body, limits.min_rate))
        })
        .service(app);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: back off briefly rather than spin.
                    tracing::warn!(%e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(
            TokioIo::new(crate::parse_errors::CodedParseErrors::new(stream)),
            TowerToHyperService::new(service.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
