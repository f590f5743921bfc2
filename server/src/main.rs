//! `monodit-server`: run the reference backend, or manage users.
//!
//! ```text
//! monodit-server serve --db data/monodit.sqlite --objects data/objects --port 8787 \
//!     [--bind 127.0.0.1] [--allow-origin ORIGIN]... [--dev] [--static www] [--ready-file PATH]
//!     [--header-timeout-secs 30] [--body-timeout-secs 30] [--max-connections 1024]
//! monodit-server user add --db data/monodit.sqlite --plan pro [--addons N]
//! ```

use clap::{Parser, Subcommand};
use monodit_core::api::Plan;
use monodit_server::{start, Config};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "monodit-server",
    version,
    about = "Reference backend for monodit-bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (boxed: its flags dwarf the other commands).
    Serve(Box<ServeArgs>),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// SQLite database file (created if missing).
    #[arg(long, env = "MONODIT_DB", default_value = "data/monodit.sqlite")]
    db: PathBuf,
    /// Object store: a local directory, or s3://bucket[/prefix] (credentials from AWS_* env).
    #[arg(long, env = "MONODIT_OBJECTS", default_value = "data/objects")]
    objects: String,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port (0 = a free port).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Origin trusted for CORS (repeatable; "*" = any, for development).
    #[arg(long = "allow-origin")]
    allow_origin: Vec<String>,
    /// Development mode: /v1/dev/* routes, a demo user, static files from --static.
    #[arg(long)]
    dev: bool,
    /// Static directory served at / in dev mode.
    #[arg(long = "static", default_value = "www")]
    static_dir: PathBuf,
    /// Token of the dev demo user.
    #[arg(long, default_value = "dev-demo-token")]
    demo_token: String,
    /// Write the base URL to this file once accepting connections.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Public base URL used in signed download links (default: the listening URL).
    #[arg(long)]
    public_url: Option<String>,
    /// Largest upload in bytes.
    #[arg(long, default_value_t = 5 * 1024 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Seconds a connection gets to send a request head, from when it opens or finishes its
    /// previous response (also closes idle keep-alive connections).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout_secs: u64,
    /// Seconds to wait for the next chunk of a request body (a stalled upload then fails and
    /// releases its quota reservation).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout_secs: u64,
    /// Connections served at once (lowered to fit the file-descriptor limit).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Bytes per second a request body must average over each 10 s of waiting (0 = off).
    #[arg(long, default_value_t = 1024)]
    body_min_rate: u64,
    /// A resumable upload untouched this many seconds expires (its reservation is released).
    #[arg(long, default_value_t = 24 * 3600)]
    upload_ttl_secs: u64,
    /// Seconds between sweeps of expired uploads and unreferenced objects (also at start).
    #[arg(long, default_value_t = 600)]
    sweep_interval_secs: u64,
    /// Directory for resumable upload parts (default: the database path with `.staging`).
    #[arg(long)]
    staging: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print its token.
    Add {
        /// SQLite database file.
        #[arg(long, env = "MONODIT_DB", default_value = "data/monodit.sqlite")]
        db: PathBuf,
        /// Plan: free or pro.
        #[arg(long, default_value = "pro")]
        plan: String,
        /// Number of 5 GB add-ons.
        #[arg(long, default_value_t = 0)]
        addons: u32,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if let Some(parent) = args.db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut config = Config::new(&args.db, args.objects);
    config.bind = args.bind;
    config.port = args.port;
    config.allow_origins = args.allow_origin;
    config.dev = args.dev;
    config.static_dir = Some(args.static_dir);
    config.demo_token = args.demo_token;
    config.public_url = args.public_url;
    config.max_upload_bytes = args.max_upload_bytes;
    config.header_timeout = std::time::Duration::from_secs(args.header_timeout_secs);
    config.body_timeout = std::time::Duration::from_secs(args.body_timeout_secs);
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.body_min_rate = args.body_min_rate;
    config.upload_ttl_secs = args.upload_ttl_secs;
    config.sweep_interval_secs = args.sweep_interval_secs;
    config.staging_dir = args.staging;
    let server = start(config).await.map_err(|e| e.to_string())?;
    println!("monodit-server listening on {}", server.base_url);
    if let Some(token) = &server.demo_token {
        println!("dev token: {token}");
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{}\n", server.base_url))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    // In-flight requests get a bounded grace period; a stalled upload must not hold the
    // process (its reservation is released at the next start anyway).
    match tokio::time::timeout(std::time::Duration::from_secs(10), server.stop()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            tracing::warn!("requests still running after 10 s; exiting");
            Ok(())
        }
    }
}

fn user_add(db: PathBuf, plan: String, addons: u32) -> Result<(), String> {
    let plan = match plan.as_str() {
        "free" => Plan::Free,
        "pro" => Plan::Pro,
        other => return Err(format!("unknown plan {other:?}: use free or pro")),
    };
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let handle = monodit_server::db::Db::open(&db).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let user = rt
        .block_on(
            handle.write(move |tx| monodit_server::store::users::create(tx, plan, addons, None)),
        )
        .map_err(|e| e.to_string())?;
    println!("{}", user.token);
    eprintln!("user {} ({plan:?}, {addons} add-ons)", user.user_id);
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(serve(*args))),
        Command::User {
            command: UserCommand::Add { db, plan, addons },
        } => user_add(db, plan, addons),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monodit-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
