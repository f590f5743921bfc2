//! monodit-server: the reference backend of monodit-bridge.
//!
//! One native process (axum + rusqlite in WAL mode + `object_store`) serving the route table
//! of [`monodit_core::api`]. [`start`] runs it in-process (tests use that on 127.0.0.1:0);
//! the `monodit-server` binary wraps it with a CLI.
//!
//! Layout: [`store`] holds the business rules over portable SQL (no axum in it), [`http`]
//! maps requests to them, [`db`] runs SQL off the async threads, [`objects`] owns the object
//! store and signed URLs, [`serve`] accepts connections and bounds what one client can hold.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod db;
pub mod env;
pub mod error;
pub mod http;
pub mod min_rate;
pub mod objects;
pub mod parse_errors;
pub mod serve;
pub mod staging;
pub mod store;
pub mod sweep;

use db::Db;
use monodit_service::{Secret, Secrets};
use object_store::ObjectStore;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The OpenAPI description, embedded at build time and served as JSON ([`openapi_json`]).
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// Server configuration (the `serve` command's flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// SQLite file.
    pub db_path: PathBuf,
    /// Object store: a directory, or `s3://bucket[/prefix]`.
    pub objects: String,
    /// Address to bind (127.0.0.1 by default).
    pub bind: IpAddr,
    /// Port (0 = any free port).
    pub port: u16,
    /// Origins trusted for CORS (`*` = any).
    pub allow_origins: Vec<String>,
    /// Dev mode: `/v1/dev/*` routes, a demo user, static files.
    pub dev: bool,
    /// Static directory served at `/` in dev mode.
    pub static_dir: Option<PathBuf>,
    /// Token of the demo user created in dev mode.
    pub demo_token: String,
    /// Public base URL for signed links (default: the listening URL).
    pub public_url: Option<String>,
    /// Largest accepted JSON request body, bytes.
    pub body_limit: usize,
    /// Largest accepted upload, bytes.
    pub max_upload_bytes: u64,
    /// Lifetime of signed download URLs, seconds.
    pub url_ttl_secs: u64,
    /// Most distinct collection index definitions the server builds (`store::indexes`).
    pub max_index_definitions: usize,
    /// Time a connection gets to send a complete request head, from when it opens or
    /// finishes its previous response (also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// Longest wait for the next chunk of a request body; a stalled upload then fails and
    /// releases its quota reservation.
    pub body_timeout: Duration,
    /// Connections served at once (lowered to fit the file-descriptor limit, see
    /// [`serve::effective_max_connections`]).
    pub max_connections: usize,
    /// Bytes per second a request body must average over each [`Config::body_rate_window`] of
    /// waiting (`--body-min-rate`; 0 = no check): the per-chunk timeout alone lets a trickle
    /// of bytes hold a connection and an upload's reservation forever.
    pub body_min_rate: u64,
    /// The waiting time one minimum-rate check covers.
    pub body_rate_window: Duration,
    /// A resumable upload untouched this long expires (`--upload-ttl-secs`), seconds.
    pub upload_ttl_secs: u64,
    /// How often the sweep runs (it also runs at start-up), seconds.
    pub sweep_interval_secs: u64,
    /// Where resumable upload parts are staged on disk (default: next to the database,
    /// `<db>.staging`).
    pub staging_dir: Option<PathBuf>,
}

impl Config {
    /// Defaults for a database and object directory (tests: on 127.0.0.1:0 in dev mode).
    pub fn new(db_path: impl Into<PathBuf>, objects: impl Into<String>) -> Self {
        Config {
            db_path: db_path.into(),
            objects: objects.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            allow_origins: Vec::new(),
            dev: true,
            static_dir: None,
            demo_token: "dev-demo-token".to_string(),
            public_url: None,
            body_limit: 8 * 1024 * 1024,
            max_upload_bytes: 5 * 1024 * 1024 * 1024,
            url_ttl_secs: 24 * 3600,
            max_index_definitions: monodit_core::limits::DEFAULT_MAX_INDEX_DEFINITIONS,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            body_min_rate: 1024,
            body_rate_window: Duration::from_secs(10),
            upload_ttl_secs: 24 * 3600,
            sweep_interval_secs: 600,
            staging_dir: None,
        }
    }
}

/// Shared state of all handlers.
pub struct AppState {
    /// Database.
    pub db: Db,
    /// Object store.
    pub objects: Arc<dyn ObjectStore>,
    /// Download URL signer.
    pub signer: objects::Signer,
    /// Base URL used in signed links.
    pub public_url: String,
    /// Dev mode.
    pub dev: bool,
    /// JSON body limit.
    pub body_limit: usize,
    /// Upload limit.
    pub max_upload_bytes: u64,
    /// Signed URL lifetime.
    pub url_ttl_secs: u64,
    /// The OpenAPI document as JSON.
    pub openapi: serde_json::Value,
    /// Key of collection query cursors (core's `cursor` module).
    pub cursor_secret: Arc<Vec<u8>>,
    /// Clock, randomness and secrets for the service layer.
    pub env: Arc<env::NativeEnv>,
    /// Authenticated users by token hash.
    pub auth_cache: http::extract::AuthCache,
    /// Dev mode: injected faults per user id (`PUT /v1/dev/faults`).
    pub faults: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Background builder of collection indexes (woken when declarations change).
    pub indexer: store::indexes::Indexer,
    /// Dev mode: upload answers still to be lost per user id (`PUT /v1/dev/faults`).
    pub upload_faults: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Dev mode: document write answers still to be lost per user id (`PUT /v1/dev/faults`).
    pub document_faults: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Resumable upload parts on disk.
    pub staging: staging::Staging,
    /// The local object directory (`None` for S3), for the sweep.
    pub objects_root: Option<PathBuf>,
    /// Resumable upload TTL, seconds.
    pub upload_ttl_secs: u64,
}

impl AppState {
    /// Dev mode: whether this request of `user_id` must fail with an injected fault (and
    /// counts it down). Always false outside dev mode.
    pub fn take_fault(&self, user_id: &str) -> bool {
        self.count_down(&self.faults, user_id)
    }

    /// Dev mode: whether this upload request of `user_id` must lose its answer (counts it
    /// down). Always false outside dev mode.
    pub fn take_upload_fault(&self, user_id: &str) -> bool {
        self.count_down(&self.upload_faults, user_id)
    }

    /// Dev mode: whether this document write of `user_id` must lose its answer (counts it
    /// down). Always false outside dev mode.
    pub fn take_document_fault(&self, user_id: &str) -> bool {
        self.count_down(&self.document_faults, user_id)
    }

    /// Dev mode: counts down `user_id`'s faults in `map`; true when one was due.
    fn count_down(
        &self,
        map: &std::sync::Mutex<std::collections::HashMap<String, u32>>,
        user_id: &str,
    ) -> bool {
        if !self.dev {
            return false;
        }
        let mut faults = map.lock().unwrap_or_else(|p| p.into_inner());
        match faults.get_mut(user_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Resumable upload TTL in milliseconds.
    pub fn upload_ttl_ms(&self) -> i64 {
        i64::try_from(self.upload_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {0}: {1}")]
    Db(PathBuf, rusqlite::Error),
    /// The object store could not be opened.
    #[error("object store {0}: {1}")]
    Objects(String, String),
    /// The address could not be bound.
    #[error("bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A server running in this process. Dropping it also shuts the server down gracefully.
pub struct RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Address it listens on.
    pub addr: SocketAddr,
    /// The dev demo user's token (dev mode only).
    pub demo_token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    maintenance: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests, and waits.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.maintenance.abort();
        self.sweeper.abort();
        self.task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

/// Converts the embedded OpenAPI YAML to JSON.
pub fn openapi_json() -> serde_json::Value {
    serde_norway::from_str(OPENAPI_YAML).unwrap_or_else(|e| {
        tracing::error!(%e, "server/openapi.yaml does not parse");
        serde_json::json!({"openapi": "3.1.0", "info": {"title": "monodit-server", "version": "0"}, "paths": {}})
    })
}

fn db_path_of(db: &Db) -> PathBuf {
    db.path().to_path_buf()
}

/// Opens the stores, binds, and serves until `shutdown` resolves or [`RunningServer::stop`].
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    for origin in &config.allow_origins {
        let o = origin.trim_end_matches('/');
        let plausible = o == "*"
            || o == "null"
            || ((o.starts_with("http://") || o.starts_with("https://"))
                && !o.contains(char::is_whitespace)
                && o.matches('/').count() == 2);
        if !plausible || axum::http::HeaderValue::from_str(o).is_err() {
            return Err(StartError::Other(format!(
                "--allow-origin {origin:?} is not an origin (scheme://host[:port], \"*\" or \"null\")"
            )));
        }
    }
    let db = Db::open(&config.db_path).map_err(|e| StartError::Db(config.db_path.clone(), e))?;
    db.recover()
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    let staging_dir = config
        .staging_dir
        .clone()
        .unwrap_or_else(|| config.db_path.with_extension("staging"));
    let staging = staging::Staging::new(staging_dir.clone())
        .map_err(|e| StartError::Other(format!("staging {}: {e}", staging_dir.display())))?;
    let objects = objects::open(&config.objects)
        .map_err(|e| StartError::Objects(config.objects.clone(), e))?;
    // Each named secret is its own (the cursor secret used to be the URL secret).
    let env = Arc::new(env::NativeEnv::load(&db_path_of(&db))?);
    let demo_token = if config.dev {
        let token = config.demo_token.clone();
        db.write(move |tx| {
            store::users::ensure_with_token(tx, &token, monodit_core::api::Plan::Pro)
        })
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
        Some(config.demo_token.clone())
    } else {
        None
    };
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(addr, e))?;
    let base_url = format!("http://{addr}");
    let indexer = store::indexes::Indexer::spawn(db.clone(), config.max_index_definitions);
    let state = Arc::new(AppState {
        db,
        objects,
        signer: objects::Signer::new(env.secret(Secret::Url).to_vec()),
        public_url: config
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| base_url.clone()),
        dev: config.dev,
        body_limit: config.body_limit,
        max_upload_bytes: config.max_upload_bytes,
        url_ttl_secs: config.url_ttl_secs,
        openapi: openapi_json(),
        cursor_secret: Arc::new(env.secret(Secret::Cursor).to_vec()),
        env,
        auth_cache: http::extract::AuthCache::default(),
        faults: Default::default(),
        indexer,
        upload_faults: Default::default(),
        document_faults: Default::default(),
        staging,
        objects_root: objects::local_root(&config.objects),
        upload_ttl_secs: config.upload_ttl_secs,
    });
    // Before the first request: what a previous run left half done goes now.
    sweep::run(&state)
        .await
        .map_err(|e| StartError::Other(format!("start-up sweep: {e}")))?;
    let sweeper = sweep::spawn(state.clone(), config.sweep_interval_secs);
    // Keep planner statistics fresh as collections grow (hourly; aborted on stop).
    let maintenance = {
        let db = state.db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = db.optimize().await {
                    tracing::warn!(%e, "PRAGMA optimize failed");
                }
            }
        })
    };
    let static_dir = if config.dev {
        config.static_dir.clone()
    } else {
        None
    };
    let app = http::router(state, static_dir.as_deref());
    let app = http::with_cors(app, &config.allow_origins, config.dev);
    let (tx, rx) = oneshot::channel::<()>();
    let limits = serve::EdgeLimits {
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        max_connections: config.max_connections,
        min_rate: min_rate::MinRate {
            bytes_per_sec: config.body_min_rate,
            window: config.body_rate_window,
        },
    };
    let task = tokio::spawn(serve::serve(listener, app, limits, async move {
        let _ = rx.await;
    }));
    Ok(RunningServer {
        base_url,
        addr,
        demo_token,
        shutdown: Some(tx),
        task,
        maintenance,
        sweeper,
    })
}
