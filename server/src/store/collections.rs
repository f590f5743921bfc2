//! Plugin document collections (seed 003): declarations per (user, plugin), `_plugin_storage`
//! rows, and expression indexes kept in step with what manifests declare.
//!
//! Declarations are per user: a user's manifest decides what that user's widgets may touch
//! and which queries are valid for them (UNDECLARED_COLLECTION, NOT_INDEXED), within core's
//! per-user `limits` (plugin ids with collections, index declarations). The physical indexes
//! (core's `index_ddl`, led by `user_id`) are shared by everyone's rows and are built in the
//! background by `store::indexes`, never inside a registration.

use crate::error::{AppError, AppResult};
use crate::store::{quota, users::UserRow};
use monodit_core::api::{CollectionItem, CollectionOp, MAX_COLLECTION_BATCH, MAX_ITEM_BYTES};
use monodit_core::manifest::{CollectionDecl, Index, Manifest};
use monodit_core::ops::{
    CountResult, DeleteManyResult, DeleteResult, ExistsResult, GetManyResult, GetResult, Written,
};
use monodit_core::query::{self, PlanRow, SqlValue};
use monodit_core::{limits, ErrorCode};
pub(crate) use monodit_service::collections::decl_from_json;
use monodit_service::collections::undeclared;
use rusqlite::types::{Value as DbValue, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};
use serde_json::to_value;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Longest item id, in bytes (core's one bound).
pub use monodit_core::limits::MAX_ITEM_ID_BYTES;

/// ISO-8601 UTC timestamp in SQL, evaluated by the database (portable to D1 / libSQL).
const NOW_SQL: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// After an instance of `manifest.id` was registered (already stored in `instances`):
/// recomputes this user's declaration of the plugin ([`redeclare`]).
pub fn register(tx: &Transaction<'_>, user_id: &str, manifest: &Manifest) -> AppResult<()> {
    // A manifest without an id declares no collections (core enforces it): nothing to scope.
    let Some(plugin_id) = manifest.id.as_deref() else {
        return Ok(());
    };
    redeclare(tx, user_id, plugin_id)
}

/// Makes this user's declaration of `plugin_id` the union of what every registered instance
/// of the plugin declares (collections, and each collection's indexes). The physical indexes
/// follow later, off the request path (`store::indexes`): the caller wakes the indexer.
///
/// A union, not the last manifest registered: one manifest can add collections or indexes but
/// never take them away while another instance still declares them. So a manifest that claims
/// another widget's plugin id cannot drop that widget's collections or indexes (its queries
/// would fail with UNDECLARED_COLLECTION / NOT_INDEXED). A plugin update that removes an index
/// takes effect once no instance of the user declares it any more.
pub fn redeclare(tx: &Transaction<'_>, user_id: &str, plugin_id: &str) -> AppResult<()> {
    let manifests: Vec<String> = tx
        .prepare("SELECT manifest FROM instances WHERE user_id = ?1 AND widget_id = ?2")?
        .query_map(params![user_id, plugin_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut union: BTreeMap<String, Vec<Index>> = BTreeMap::new();
    for text in manifests {
        // Stored manifests were valid when registered; one that no longer parses adds nothing.
        let Ok(m) = serde_json::from_str::<Value>(&text)
            .map_err(|_| ())
            .and_then(|v| Manifest::parse(&v).map_err(|_| ()))
        else {
            continue;
        };
        for (name, decl) in m.collections {
            let indexes = union.entry(name).or_default();
            for index in decl.indexes {
                if !indexes.contains(&index) {
                    indexes.push(index);
                }
            }
        }
    }
    tx.execute(
        "DELETE FROM plugin_collections WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, plugin_id],
    )?;
    for (name, indexes) in &union {
        tx.execute(
            "INSERT INTO plugin_collections (user_id, plugin_id, collection, indexes) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, plugin_id, name, serde_json::to_string(indexes)?],
        )?;
    }
    Ok(())
}

/// How much a user has declared: plugin ids with collections, and index declarations
/// summed over all of them (what core `limits` bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// Plugin ids with at least one declared collection.
    pub plugins: usize,
    /// Index declarations over all plugin ids and collections.
    pub indexes: usize,
}

/// The user's [`Declared`] totals as they are in this transaction.
pub fn declared(tx: &Transaction<'_>, user_id: &str) -> AppResult<Declared> {
    let mut out = Declared {
        plugins: 0,
        indexes: 0,
    };
    let mut plugins = BTreeSet::new();
    let mut stmt =
        tx.prepare("SELECT plugin_id, indexes FROM plugin_collections WHERE user_id = ?1")?;
    for row in stmt.query_map(params![user_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (plugin_id, indexes) = row?;
        plugins.insert(plugin_id);
        out.indexes += decl_from_json(&indexes).indexes.len();
    }
    out.plugins = plugins.len();
    Ok(out)
}

/// After a registration changed the user's declarations from `before` to `after`: refuses
/// growth past core's per-user limits (LIMIT_EXCEEDED; the caller's transaction then rolls
/// the registration back). A total already past a limit (a limit lowered by an upgrade) may
/// stay or shrink, so nobody is locked out of re-registering what they have.
pub fn check_declared(before: Declared, after: Declared) -> AppResult<()> {
    if after.plugins > before.plugins {
        limits::check_count(
            "plugin ids with collections",
            after.plugins,
            limits::MAX_DECLARED_PLUGINS_PER_USER,
        )?;
    }
    if after.indexes > before.indexes {
        limits::check_count(
            "index declarations",
            after.indexes,
            limits::MAX_INDEX_DECLARATIONS_PER_USER,
        )?;
    }
    Ok(())
}

/// The caller's declaration of a collection, or UNDECLARED_COLLECTION.
fn declaration(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
) -> AppResult<CollectionDecl> {
    let text: Option<String> = tx
        .query_row(
            "SELECT indexes FROM plugin_collections WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3",
            params![user_id, plugin_id, collection],
            |r| r.get(0),
        )
        .optional()?;
    text.map(|t| decl_from_json(&t))
        .ok_or_else(|| undeclared(plugin_id, collection).into())
}

fn check_item_id(id: &str) -> AppResult<()> {
    Ok(limits::check_item_id(id)?)
}

fn check_batch(n: usize) -> AppResult<()> {
    if n > MAX_COLLECTION_BATCH {
        return Err(AppError::invalid(format!(
            "at most {MAX_COLLECTION_BATCH} items per batch (got {n})"
        )));
    }
    Ok(())
}

fn encode_item(data: &Value) -> AppResult<String> {
    let text = serde_json::to_string(data)?;
    if text.len() as u64 > MAX_ITEM_BYTES {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("an item may hold at most {MAX_ITEM_BYTES} bytes of JSON"),
        ));
    }
    Ok(text)
}

fn to_db(v: &SqlValue) -> DbValue {
    match v {
        SqlValue::Null => DbValue::Null,
        SqlValue::Integer(i) => DbValue::Integer(*i),
        SqlValue::Real(f) => DbValue::Real(*f),
        SqlValue::Text(s) => DbValue::Text(s.clone()),
        SqlValue::Bool(b) => DbValue::Integer(i64::from(*b)),
    }
}

fn from_db(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            SqlValue::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// Bytes of an existing item (0 if absent).
fn item_size(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
    id: &str,
) -> AppResult<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT length(CAST(data AS BLOB)) FROM _plugin_storage \
             WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 AND id = ?4",
            params![user_id, plugin_id, collection, id],
            |r| r.get(0),
        )
        .optional()?)
}

fn upsert(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
    id: &str,
    text: &str,
) -> AppResult<i64> {
    let old = item_size(tx, user_id, plugin_id, collection, id)?.unwrap_or(0);
    tx.execute(
        &format!(
            "INSERT INTO _plugin_storage (user_id, plugin_id, collection, id, data, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, {NOW_SQL}, {NOW_SQL}) \
             ON CONFLICT (user_id, plugin_id, collection, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
        ),
        params![user_id, plugin_id, collection, id, text],
    )?;
    Ok(text.len() as i64 - old)
}

fn remove(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
    id: &str,
) -> AppResult<Option<i64>> {
    let old = item_size(tx, user_id, plugin_id, collection, id)?;
    if old.is_some() {
        tx.execute(
            "DELETE FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 AND id = ?4",
            params![user_id, plugin_id, collection, id],
        )?;
    }
    Ok(old)
}

fn get_one(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
    id: &str,
) -> AppResult<Option<Value>> {
    let text: Option<String> = tx
        .prepare_cached(
            "SELECT data FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 AND id = ?4",
        )?
        .query_row(params![user_id, plugin_id, collection, id], |r| r.get(0))
        .optional()?;
    Ok(match text {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

/// Charges a net size change to the quota; growth must fit (QUOTA_EXCEEDED rolls the whole
/// operation back, since the caller's transaction is not committed on error).
fn charge(tx: &Transaction<'_>, user: &UserRow, delta: i64) -> AppResult<()> {
    if delta > 0 {
        quota::ensure_fits(tx, user, delta as u64)?;
    }
    quota::adjust_used(tx, &user.id, delta, true)
}

/// Runs one operation inside the caller's transaction (one transaction per op, batches
/// included) and returns its JSON answer.
pub fn run(
    tx: &Transaction<'_>,
    user: &UserRow,
    plugin_id: &str,
    collection: &str,
    op: CollectionOp,
    cursor_secret: &[u8],
) -> AppResult<Value> {
    let decl = declaration(tx, &user.id, plugin_id, collection)?;
    let uid = user.id.as_str();
    Ok(match op {
        CollectionOp::Get { id } => {
            check_item_id(&id)?;
            to_value(GetResult {
                item: get_one(tx, uid, plugin_id, collection, &id)?,
            })?
        }
        CollectionOp::Exists { id } => {
            check_item_id(&id)?;
            to_value(ExistsResult {
                exists: item_size(tx, uid, plugin_id, collection, &id)?.is_some(),
            })?
        }
        CollectionOp::Put { id, data } => {
            check_item_id(&id)?;
            let text = encode_item(&data)?;
            let delta = upsert(tx, uid, plugin_id, collection, &id, &text)?;
            charge(tx, user, delta)?;
            to_value(Written {})?
        }
        CollectionOp::Delete { id } => {
            check_item_id(&id)?;
            let old = remove(tx, uid, plugin_id, collection, &id)?;
            charge(tx, user, -old.unwrap_or(0))?;
            to_value(DeleteResult {
                deleted: old.is_some(),
            })?
        }
        CollectionOp::GetMany { ids } => {
            check_batch(ids.len())?;
            let mut items = Map::new();
            for id in ids {
                check_item_id(&id)?;
                if let Some(v) = get_one(tx, uid, plugin_id, collection, &id)? {
                    items.insert(id, v);
                }
            }
            to_value(GetManyResult { items })?
        }
        CollectionOp::PutMany { items } => {
            check_batch(items.len())?;
            let encoded = items
                .iter()
                .map(|CollectionItem { id, data }| {
                    check_item_id(id)?;
                    Ok((id.as_str(), encode_item(data)?))
                })
                .collect::<AppResult<Vec<_>>>()?;
            let mut delta = 0i64;
            for (id, text) in &encoded {
                delta += upsert(tx, uid, plugin_id, collection, id, text)?;
            }
            charge(tx, user, delta)?;
            to_value(Written {})?
        }
        CollectionOp::DeleteMany { ids } => {
            check_batch(ids.len())?;
            for id in &ids {
                check_item_id(id)?;
            }
            let (mut deleted, mut freed) = (0u64, 0i64);
            for id in &ids {
                if let Some(old) = remove(tx, uid, plugin_id, collection, id)? {
                    deleted += 1;
                    freed += old;
                }
            }
            charge(tx, user, -freed)?;
            to_value(DeleteManyResult { deleted })?
        }
        CollectionOp::Query(opts) => {
            let vq = query::validate(&opts, &decl)?;
            let plan = query::plan_query(plugin_id, collection, uid, &vq, cursor_secret)?;
            let mut stmt = tx.prepare(&plan.sql)?;
            let mut found = stmt.query(params_from_iter(plan.params.iter().map(to_db)))?;
            // A NULL `data` is the first row past the page's byte cap: the page ends before it.
            let (mut rows, mut cut) = (Vec::new(), false);
            while let Some(r) = found.next()? {
                let Some(data) = r.get::<_, Option<String>>(1)? else {
                    cut = true;
                    break;
                };
                rows.push(PlanRow {
                    id: r.get(0)?,
                    data: serde_json::from_str(&data)?,
                    sort_key: from_db(r.get_ref(2)?),
                });
            }
            serde_json::to_value(plan.finish_page(rows, cut)?)?
        }
        CollectionOp::Count { where_ } => {
            let filters = query::validate_where(where_.as_ref(), &decl)?;
            let stmt = query::plan_count(plugin_id, collection, uid, &filters)?;
            let n: i64 = tx.query_row(
                &stmt.sql,
                params_from_iter(stmt.params.iter().map(to_db)),
                |r| r.get(0),
            )?;
            to_value(CountResult {
                count: u64::try_from(n).unwrap_or(0),
            })?
        }
    })
}

/// `POST /v1/dev/explain/{pluginId}/{collection}` (dev mode): `EXPLAIN QUERY PLAN` of the
/// SQL `run` would send for the query `opts` (`api::QueryPlanExplained`).
pub fn explain(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
    opts: &query::QueryOptions,
    cursor_secret: &[u8],
) -> AppResult<monodit_core::api::QueryPlanExplained> {
    let decl = declaration(tx, user_id, plugin_id, collection)?;
    let vq = query::validate(opts, &decl)?;
    let plan = query::plan_query(plugin_id, collection, user_id, &vq, cursor_secret)?;
    let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {}", plan.sql))?;
    let rows = stmt.query_map(params_from_iter(plan.params.iter().map(to_db)), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(monodit_core::api::QueryPlanExplained {
        plan: rows.collect::<Result<_, _>>()?,
    })
}
