//! The native [`Env`] of the service layer: the system clock, the OS random source, and the
//! server's secrets, each kept under its own name in the database's `settings` table so
//! signed URLs and cursors survive restarts.

use crate::StartError;
use monodit_service::env::new_secret;
use monodit_service::{Clock, Random, Secret, Secrets};
use std::collections::HashMap;
use std::path::Path;

/// The system clock and random source, for what needs no secret (creating one).
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Clock for System {
    /// Milliseconds since the Unix epoch (0 if the clock is before it).
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl Random for System {
    /// Fills `buf` from the OS random source.
    fn fill_random(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rng().fill_bytes(buf);
    }
}

/// The server's environment: [`System`] plus the secrets loaded at start.
#[derive(Debug, Clone)]
pub struct NativeEnv {
    secrets: HashMap<Secret, Vec<u8>>,
}

impl NativeEnv {
    /// Loads every named secret from the database at `db_path`, creating (and storing) the
    /// ones it does not hold yet.
    pub fn load(db_path: &Path) -> Result<NativeEnv, StartError> {
        let conn =
            rusqlite::Connection::open(db_path).map_err(|e| StartError::Other(e.to_string()))?;
        let mut secrets = HashMap::new();
        for which in Secret::ALL {
            secrets.insert(which, load_or_create_secret(&conn, which)?);
        }
        Ok(NativeEnv { secrets })
    }
}

impl Clock for NativeEnv {
    fn now_ms(&self) -> u64 {
        System.now_ms()
    }
}

impl Random for NativeEnv {
    fn fill_random(&self, buf: &mut [u8]) {
        System.fill_random(buf)
    }
}

impl Secrets for NativeEnv {
    fn secret(&self, which: Secret) -> &[u8] {
        // `load` filled every name of `Secret::ALL`.
        self.secrets.get(&which).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The 32-byte secret stored under `which`'s own name in `settings`, created from the OS
/// random source on first use. Each name is its own key: the cursor secret is never the URL
/// secret.
fn load_or_create_secret(
    conn: &rusqlite::Connection,
    which: Secret,
) -> Result<Vec<u8>, StartError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [which.name()],
            |r| r.get(0),
        )
        .ok();
    if let Some(secret) = existing.and_then(|h| hex::decode(h).ok()) {
        return Ok(secret);
    }
    let secret = new_secret(&System);
    conn.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
        [which.name(), &hex::encode(&secret)],
    )
    .map_err(|e| StartError::Other(e.to_string()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use monodit_service::Env;

    fn stored(db: &Path, name: &str) -> Option<String> {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT value FROM settings WHERE key = ?1", [name], |r| {
                r.get(0)
            })
            .ok()
    }

    #[test]
    fn each_named_secret_is_its_own_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Db::open(&path).unwrap());
        let env = NativeEnv::load(&path).unwrap();
        let (url, cursor) = (env.secret(Secret::Url), env.secret(Secret::Cursor));
        assert_eq!((url.len(), cursor.len()), (32, 32));
        assert_ne!(url, cursor, "the cursor secret must not be the URL secret");
        assert_eq!(stored(&path, "url_secret"), Some(hex::encode(url)));
        assert_eq!(stored(&path, "cursor_secret"), Some(hex::encode(cursor)));
        let again = NativeEnv::load(&path).unwrap();
        assert_eq!(again.secret(Secret::Url), url);
        assert_eq!(again.secret(Secret::Cursor), cursor);
    }

    #[test]
    fn a_database_with_only_a_url_secret_gets_its_own_cursor_secret() {
        // What a server before the fix left behind: cursors were signed with url_secret.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Db::open(&path).unwrap());
        let url = "ab".repeat(32);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO settings (key, value) VALUES ('url_secret', ?1)",
                [&url],
            )
            .unwrap();
        let env = NativeEnv::load(&path).unwrap();
        assert_eq!(hex::encode(env.secret(Secret::Url)), url, "URLs stay valid");
        assert_ne!(hex::encode(env.secret(Secret::Cursor)), url);
    }

    #[test]
    fn the_clock_and_random_source_are_the_systems() {
        fn is_env(_: &dyn Env) {}
        is_env(&NativeEnv {
            secrets: HashMap::new(),
        });
        let env = System;
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let now = env.now_ms();
        assert!(now >= before && now < before + 60_000);
        assert_ne!(env.random_hex(16), env.random_hex(16));
    }
}
