//! Plugin document collections (seed 003): declarations per (user, plugin), `_plugin_storage`
//! rows, and expression indexes kept in step with what manifests declare.

use crate::error::AppResult;
use monodit_core::manifest::Manifest;
use rusqlite::{params, Transaction};

/// Replaces this user's declaration of `manifest.id`'s collections with the manifest's.
pub fn register(tx: &Transaction<'_>, user_id: &str, manifest: &Manifest) -> AppResult<()> {
    tx.execute(
        "DELETE FROM plugin_collections WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, manifest.id],
    )?;
    for (name, decl) in &manifest.collections {
        tx.execute(
            "INSERT INTO plugin_collections (user_id, plugin_id, collection, indexes) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, manifest.id, name, serde_json::to_string(&decl.indexes)?],
        )?;
    }
    Ok(())
}

/// Runs one collection operation (filled in once core's query planner lands).
pub fn run(
    _tx: &Transaction<'_>,
    _user: &crate::store::users::UserRow,
    _plugin_id: &str,
    _collection: &str,
    _op: &str,
    _body: serde_json::Value,
) -> AppResult<serde_json::Value> {
    Err(crate::error::AppError::new(
        monodit_core::ErrorCode::Internal,
        "collections are not available yet",
    ))
}
