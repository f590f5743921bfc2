//! The physical expression indexes on `_plugin_storage` on D1: core's `index_ddl` (the same
//! partial expression indexes the native server builds, `server/src/store/indexes.rs`),
//! created when a registration that declares them has committed.
//!
//! Natively a background task follows the declarations, one index per writer transaction.
//! A Worker has no background task and D1 no long transaction, so the registration that
//! declares an index builds it, right after its batch committed: one `CREATE INDEX IF NOT
//! EXISTS` statement per index not yet in `sqlite_master` (an index that exists costs
//! nothing, so registering again is free and retries one that failed). What bounds the work
//! of one request: a manifest declares at most `limits::MAX_INDEX_DECLARATIONS_PER_USER`
//! indexes and only the missing ones are built; each is one D1 statement, so D1's per-query
//! time limit bounds it, and a statement that fails (a limit, a full database) builds nothing,
//! is logged, and leaves the registration as it is: queries stay correct without the index
//! (they read the user's rows of the collection through the primary key). The cost of one
//! `CREATE INDEX` is one scan of `_plugin_storage`; the table is usually small when a
//! plugin's manifest is first registered (its data comes after), which is when indexes are
//! built. As natively, only a user whose plan includes storage builds (a Free user's
//! declarations build nothing), and the server-wide ceiling
//! (`limits::DEFAULT_MAX_INDEX_DEFINITIONS`) is kept: no index is created once that many
//! exist. Unlike natively, indexes nobody declares any more are not dropped.

use crate::db::Db;
use monodit_core::limits::DEFAULT_MAX_INDEX_DEFINITIONS;
use monodit_core::manifest::Manifest;
use monodit_core::query;
use monodit_core::Error;
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct Name {
    name: String,
}

/// The declared indexes built so far (core's `idx_` names on `_plugin_storage`).
async fn built(db: &Db) -> Result<BTreeSet<String>, Error> {
    Ok(db
        .all::<Name>(
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = '_plugin_storage' AND name LIKE 'idx\\_%' ESCAPE '\\'",
            vec![],
        )
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect())
}

/// Creates the indexes `manifest` declares that do not exist yet (module doc). Never fails:
/// a missing index only makes queries slower, so problems are logged.
pub async fn build_declared(db: &Db, manifest: &Manifest) {
    let ddl = match query::manifest_index_ddl(manifest) {
        Ok(ddl) if !ddl.is_empty() => ddl,
        Ok(_) => return,
        Err(e) => return worker::console_error!("index definitions: {}", e.message),
    };
    let mut built = match built(db).await {
        Ok(b) => b,
        Err(e) => return worker::console_error!("listing indexes: {}", e.message),
    };
    for (name, sql) in ddl {
        if built.contains(&name) {
            continue;
        }
        if built.len() >= DEFAULT_MAX_INDEX_DEFINITIONS {
            worker::console_warn!("index ceiling reached; {name} is not built");
            return;
        }
        // `Db::run` logs a failure; the next registration declaring the index retries it.
        if db.run(&sql, vec![]).await.is_ok() {
            built.insert(name);
        }
    }
}
