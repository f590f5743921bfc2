//! SQLite access: one writer connection and a small pool of readers, all used off the async
//! threads (`spawn_blocking`), in WAL mode so readers never wait for the writer.
//!
//! Every write goes through the single writer inside an IMMEDIATE transaction. That
//! serialisation is what makes quota checks atomic: a check and the write it guards can never
//! interleave with another write (SQLite would do the same with its own lock; one connection
//! just avoids busy retries).

use crate::error::{AppError, AppResult};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Readers kept open between requests; more are opened on demand and closed after use.
const MAX_IDLE_READERS: usize = 8;

/// Columns added after the first release: (table, column, definition). [`SCHEMA`] creates
/// them for new databases; [`migrate`] adds them to databases made by an older version.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("users", "limit_override", "INTEGER"),
    // The `ctx.kv` share of `used_bytes` (old databases hold no kv rows, so 0 is exact).
    ("users", "kv_bytes", "INTEGER NOT NULL DEFAULT 0"),
    // Where an instance's code comes from (core `plugins`); NULL for older registrations.
    ("instances", "source", "TEXT"),
];

/// Brings a database made by an older version up to [`SCHEMA`]: additive only (new tables
/// come from `CREATE TABLE IF NOT EXISTS` in the schema; new columns are added here), so an
/// existing database upgrades in place and keeps every row.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            // Identifiers are the constants above, never input.
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// The schema. Portable SQL (SQLite, libSQL, D1): plain types, no SQLite-only syntax beyond
/// `json_extract`, which all three share. `_plugin_storage` comes from core
/// ([`monodit_core::query::CREATE_TABLE_SQL`]): seed 003's table plus `user_id`.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  plan TEXT NOT NULL,
  addons INTEGER NOT NULL DEFAULT 0,
  used_bytes INTEGER NOT NULL DEFAULT 0,
  reserved_bytes INTEGER NOT NULL DEFAULT 0,
  collection_bytes INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  limit_override INTEGER,
  kv_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS buckets (
  user_id TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  schema_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  bytes INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, backend, bucket_id)
);
CREATE TABLE IF NOT EXISTS bucket_tombstones (
  user_id TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  last_version INTEGER NOT NULL,
  PRIMARY KEY (user_id, backend, bucket_id)
);
CREATE TABLE IF NOT EXISTS documents (
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, bucket_id)
);
CREATE TABLE IF NOT EXISTS document_mutations (
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  mutation_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, bucket_id, mutation_id)
);
CREATE INDEX IF NOT EXISTS document_mutations_age ON document_mutations (updated_at);
CREATE TABLE IF NOT EXISTS assets (
  object_key TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_bucket ON assets (user_id, bucket_id, uploaded_at);
CREATE TABLE IF NOT EXISTS instances (
  user_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  widget_id TEXT NOT NULL,
  manifest TEXT NOT NULL,
  config TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  source TEXT,
  PRIMARY KEY (user_id, instance_id)
);
CREATE TABLE IF NOT EXISTS instance_bindings (
  user_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  binding_key TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  config_key TEXT,
  isolated INTEGER NOT NULL,
  PRIMARY KEY (user_id, instance_id, binding_key)
);
CREATE INDEX IF NOT EXISTS instance_bindings_by_bucket ON instance_bindings (user_id, backend, bucket_id);
CREATE TABLE IF NOT EXISTS plugin_collections (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  collection TEXT NOT NULL,
  indexes TEXT NOT NULL,
  PRIMARY KEY (user_id, plugin_id, collection)
);
-- ctx.kv (seed 003 settings:/state: keys): one JSON value per (user, plugin, key). `size` is
-- the value's byte length as stored, what quota counted (refunds use it, never a re-measure).
-- The primary key's index serves key lookups and prefix ranges in key order (BINARY).
CREATE TABLE IF NOT EXISTS plugin_kv (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, plugin_id, key)
);
-- The source each plugin id is pinned to (core `plugins`): the last accepted claim. It keeps
-- guarding the plugin's data after its instances are gone; deleting the data releases it.
CREATE TABLE IF NOT EXISTS plugin_pins (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (user_id, plugin_id)
);
CREATE TABLE IF NOT EXISTS plugin_indexes (
  name TEXT PRIMARY KEY,
  plugin_id TEXT NOT NULL,
  collection TEXT NOT NULL
);
-- Objects being written (a single-shot upload streaming, a resumable upload completing):
-- recorded before the first byte reaches the store, removed in the transaction that settles
-- the asset. The sweep deletes every stored object that neither `assets` nor this table
-- names, so a crash leaves only garbage it can find. `upload_id` marks a completion.
CREATE TABLE IF NOT EXISTS pending_objects (
  object_key TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  upload_id TEXT,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pending_objects_by_upload ON pending_objects (upload_id);
-- Objects to delete: a deleted asset's, a failed write's, one a restart cut short. Recorded
-- in the transaction that hides and refunds them, removed once the object is gone, so the
-- sweep finishes any deletion a crash interrupted without listing the store.
CREATE TABLE IF NOT EXISTS doomed_objects (
  object_key TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
-- Idempotency-Key of single-shot uploads, per user: `done = 0` while the first request
-- streams, then the asset it produced (a copy, so a retry answers the same AssetInfo).
CREATE TABLE IF NOT EXISTS asset_upload_keys (
  user_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  object_key TEXT NOT NULL,
  done INTEGER NOT NULL,
  bucket_id TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, idem_key)
);
-- Resumable uploads: `state` is 'open' (parts arriving; `size` reserved) or 'done'
-- (`object_key` is the asset it produced). Parts are staged on disk, one row per stored part.
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  schema_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  part_size INTEGER NOT NULL,
  state TEXT NOT NULL,
  object_key TEXT,
  uploaded_at INTEGER,
  touched_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, idem_key)
);
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (state, touched_at);
CREATE TABLE IF NOT EXISTS upload_parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);
"#;

/// Handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database at `path`, switches it to WAL and applies the
    /// schema. It changes no rows: the server calls [`Db::recover`] once it owns the database
    /// (`user add` may open the database of a running server).
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        conn.execute_batch(monodit_core::query::CREATE_TABLE_SQL)?;
        Ok(Db {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// At server start: settles what a previous run left in flight. No single-shot upload
    /// or completion survives a restart, so their pending objects are doomed (the sweep
    /// deletes them) and their idempotency keys are freed; reservations are recomputed from
    /// the resumable uploads still open (which do survive).
    pub async fn recover(&self) -> AppResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) \
                 SELECT object_key, ?1 FROM pending_objects",
                [now_ms()],
            )?;
            tx.execute_batch(
                "DELETE FROM pending_objects; \
                 DELETE FROM asset_upload_keys WHERE done = 0; \
                 UPDATE users SET reserved_bytes = COALESCE((SELECT SUM(size) FROM uploads \
                   WHERE uploads.user_id = users.id AND uploads.state = 'open'), 0);",
            )?;
            Ok(())
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` inside one IMMEDIATE transaction on the writer; commits when `f` returns Ok.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Transaction<'_>) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| AppError::internal("database task", e))?
    }

    /// Runs `f` on a reader connection inside one read transaction (a consistent snapshot).
    pub async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Transaction<'_>) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = this.take_reader()?;
            let out = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            this.give_back(conn);
            out
        })
        .await
        .map_err(|e| AppError::internal("database task", e))?
    }

    /// Refreshes planner statistics where they are stale (`PRAGMA optimize`, cheap when
    /// nothing changed); the server runs it periodically.
    pub async fn optimize(&self) -> AppResult<()> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let conn = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.execute_batch("PRAGMA optimize")?;
            Ok(())
        })
        .await
        .map_err(|e| AppError::internal("database task", e))?
    }

    fn take_reader(&self) -> AppResult<Connection> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&conn)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
