//! Native-only test access: a server started with a tweaked `Config`, its SQLite file and its
//! object directory. Only the `native` target includes this module.

use crate::support::{Native, Srv};
use monodit_server::Config;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

impl Srv {
    /// A fresh native server (never the one named by `MONODIT_CONFORMANCE_URL`).
    pub async fn start_native() -> Srv {
        Srv::launch(|_| {}).await
    }

    /// A fresh native server after `tweak` adjusted its configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Srv {
        Srv::launch(tweak).await
    }

    fn native(&self) -> &Native {
        self.native
            .as_ref()
            .expect("a native test runs its own server")
    }

    /// The server's temporary directory (database, objects, staging).
    pub fn dir(&self) -> &TempDir {
        &self.native().dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir().path().join("db.sqlite")
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir().path().join("objects")
    }

    /// A direct connection to the server's database, for test set-up and inspection only.
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db_path()).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
