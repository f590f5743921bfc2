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

/// Columns added before the migrations were numbered: (table, column, definition). Migration
/// 0001 creates them for new databases; [`migrate`] adds them to databases made by an older
/// version.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("users", "limit_override", "INTEGER"),
    // The `ctx.kv` share of `used_bytes` (old databases hold no kv rows, so 0 is exact).
    ("users", "kv_bytes", "INTEGER NOT NULL DEFAULT 0"),
    // Where an instance's code comes from (core `plugins`); NULL for older registrations.
    ("instances", "source", "TEXT"),
];

/// Brings a database made before the migrations were numbered up to migration 0001: additive
/// only (new tables come from its `CREATE TABLE IF NOT EXISTS`; new columns are added here),
/// so an existing database upgrades in place and keeps every row.
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

/// The numbered migrations, in order: `(file name, SQL)`. The same files are the Worker's D1
/// migrations (`migrations_dir` in `crates/worker/wrangler.toml`), so both backends run one
/// schema. Portable SQL (SQLite, libSQL, D1): plain types, no pragmas and no transaction
/// statements (D1 refuses both; [`Db::open`] sets the pragmas), one statement per `;` at a
/// line's end. A new migration is a new file here and in `server/migrations/`; a test checks
/// the two lists agree.
pub const MIGRATIONS: [(&str, &str); 7] = [
    ("0001_init.sql", include_str!("../migrations/0001_init.sql")),
    (
        "0002_guard.sql",
        include_str!("../migrations/0002_guard.sql"),
    ),
    (
        "0003_dev_faults.sql",
        include_str!("../migrations/0003_dev_faults.sql"),
    ),
    (
        "0004_upload_multipart.sql",
        include_str!("../migrations/0004_upload_multipart.sql"),
    ),
    (
        "0005_dev_lost_answers.sql",
        include_str!("../migrations/0005_dev_lost_answers.sql"),
    ),
    (
        "0006_instance_revisions.sql",
        include_str!("../migrations/0006_instance_revisions.sql"),
    ),
    (
        "0007_pending_reservations.sql",
        include_str!("../migrations/0007_pending_reservations.sql"),
    ),
];

/// The table recording applied migrations: wrangler's own (`d1_migrations`), so a database
/// records its migrations the same way on both backends.
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS d1_migrations (\
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";

/// Applies every migration of [`MIGRATIONS`] not recorded in `d1_migrations`, in order, each
/// in its own IMMEDIATE transaction together with its record. The baseline (0001, only
/// `IF NOT EXISTS` statements) runs at every start, as the schema did before it was numbered:
/// it recreates whatever table a database lacks, also one made before the migrations were
/// numbered or by an older version ([`migrate`] then adds the columns it lacks). Later
/// migrations run once.
fn apply_migrations(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(MIGRATIONS_TABLE)?;
    for (name, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT COUNT(*) FROM d1_migrations WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        let baseline = name == MIGRATIONS[0].0;
        if !applied || baseline {
            tx.execute_batch(sql)?;
        }
        if !applied {
            tx.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [name])?;
        }
        tx.commit()?;
    }
    Ok(())
}

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
    /// migrations ([`MIGRATIONS`]). It changes no rows: the server calls [`Db::recover`] once it owns the database
    /// (`user add` may open the database of a running server).
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        apply_migrations(&mut conn)?;
        migrate(&conn)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_list_names_every_file_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}");
            // D1 refuses these; the native server sets its pragmas in code.
            let upper: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .to_uppercase();
            for refused in ["PRAGMA", "BEGIN", "COMMIT"] {
                assert!(!upper.contains(refused), "{name} contains {refused}");
            }
        }
    }

    #[test]
    fn the_baseline_can_run_at_every_start() {
        let statements: Vec<&str> = MIGRATIONS[0]
            .1
            .lines()
            .filter(|l| l.starts_with("CREATE"))
            .collect();
        assert!(statements.len() > 20);
        for line in statements {
            assert!(line.contains(" IF NOT EXISTS "), "{line}");
        }
    }

    #[test]
    fn plugin_storage_is_cores_table() {
        assert!(MIGRATIONS[0]
            .1
            .contains(monodit_core::query::CREATE_TABLE_SQL));
    }

    #[test]
    fn migrations_apply_once_and_reopening_keeps_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let db = Db::open(&path).unwrap();
        {
            let conn = db.writer.lock().unwrap();
            conn.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", [])
                .unwrap();
        }
        drop(db);
        let db = Db::open(&path).unwrap();
        let conn = db.writer.lock().unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM d1_migrations ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            names,
            [
                "0001_init.sql",
                "0002_guard.sql",
                "0003_dev_faults.sql",
                "0004_upload_multipart.sql",
                "0005_dev_lost_answers.sql",
                "0006_instance_revisions.sql",
                "0007_pending_reservations.sql"
            ]
        );
        let v: String = conn
            .query_row("SELECT value FROM settings WHERE key = 'k'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, "v");
    }
}
