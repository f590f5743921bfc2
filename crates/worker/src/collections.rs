//! Plugin collections on D1 (`POST /v1/collections/{pluginId}/{collection}/{op}`), with the
//! native server's table, SQL and rules (`server/src/store/collections.rs`) and core's query
//! planner (`monodit_core::query`: validation, SQL and params, cursors).
//!
//! Reads run as one batch (one snapshot). A write reads the sizes it replaces and the usage,
//! checks that the growth fits, and sends one guarded batch whose guard re-checks the
//! declaration, the replaced sizes and the quota, so a check and its write never interleave
//! with another write. D1 binds numbers as JS doubles: an integer of 2^53 or more in a `where`
//! value or in the sort key a cursor carries would be silently rounded, so core's planner
//! refuses it (INVALID_ARGUMENT, `query::EXACT_INTEGER_LIMIT`) on both backends.
//! A page stops at core's byte cap (`query::MAX_PAGE_BYTES`) inside the SQL, so an isolate
//! never holds more than that of item data for one page. No plan is cached between requests (isolates share no memory, and a user's declarations
//! may change between any two requests).

use crate::args;
use crate::db::{self, Arg, Db};
use crate::kv::check_plugin_id;
use crate::users::User;
use monodit_core::api::{CollectionItem, CollectionOp, MAX_COLLECTION_BATCH, MAX_ITEM_BYTES};
use monodit_core::manifest::CollectionDecl;
use monodit_core::query::{self, PlanRow, SqlValue};
use monodit_core::{Error, ErrorCode};
use monodit_service::collections::{decl_from_json, undeclared};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Longest item id, in bytes (the native `MAX_ITEM_ID_BYTES`).
pub const MAX_ITEM_ID_BYTES: usize = 256;

/// ISO-8601 UTC timestamp in SQL, evaluated by the database (as natively).
const NOW_SQL: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The declared-collection condition of a guard (`?1` user, `?2` plugin, `?3` collection).
const DECLARED: &str = "EXISTS (SELECT 1 FROM plugin_collections WHERE user_id = ?1 \
     AND plugin_id = ?2 AND collection = ?3)";

fn check_item_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ITEM_ID_BYTES || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "item ids are 1..={MAX_ITEM_ID_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_batch(n: usize) -> Result<(), Error> {
    if n > MAX_COLLECTION_BATCH {
        return Err(Error::invalid(format!(
            "at most {MAX_COLLECTION_BATCH} items per batch (got {n})"
        )));
    }
    Ok(())
}

fn encode_item(data: &Value) -> Result<String, Error> {
    let text = serde_json::to_string(data).map_err(|e| Error::invalid(e.to_string()))?;
    if text.len() as u64 > MAX_ITEM_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("an item may hold at most {MAX_ITEM_BYTES} bytes of JSON"),
        ));
    }
    Ok(text)
}

/// A planner value as a D1 argument (core's planner refused integers a JS number cannot
/// hold exactly).
fn to_arg(v: &SqlValue) -> Arg {
    match v {
        SqlValue::Null => Arg::Null,
        SqlValue::Integer(i) => Arg::Int(*i),
        SqlValue::Real(f) => Arg::Real(*f),
        SqlValue::Text(s) => Arg::Text(s.clone()),
        SqlValue::Bool(b) => Arg::Int(i64::from(*b)),
    }
}

/// A sort key as D1 reads it back. A JS number has no integer/real distinction: an integral
/// value is read as an integer (SQLite compares it equal to the same real), and one of 2^53
/// or more (maybe a larger integer, rounded) stays an integer that large, so core refuses to
/// put it in a cursor (`SqlPlan::finish`).
fn sort_key_of(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Integer(i),
            (_, Some(f)) if f.fract() != 0.0 => SqlValue::Real(f),
            // `as` saturates: past i64 it is still refused as 2^53 or more.
            (_, Some(f)) => SqlValue::Integer(f as i64),
            _ => SqlValue::Null,
        },
        other => SqlValue::Text(other.to_string()),
    }
}

#[derive(Deserialize)]
struct DeclRow {
    indexes: String,
}

/// The caller's declaration of a collection, or UNDECLARED_COLLECTION (as natively).
async fn declaration(
    db: &Db,
    user_id: &str,
    plugin_id: &str,
    collection: &str,
) -> Result<CollectionDecl, Error> {
    let row: Option<DeclRow> = db
        .first(
            "SELECT indexes FROM plugin_collections WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3",
            args![user_id, plugin_id, collection],
        )
        .await?;
    let Some(row) = row else {
        return Err(undeclared(plugin_id, collection));
    };
    Ok(decl_from_json(&row.indexes))
}

#[derive(Deserialize)]
struct Item {
    id: String,
    data: String,
}

#[derive(Deserialize)]
struct Sizes {
    n: i64,
    bytes: i64,
}

fn parse_data(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| db::internal("stored item", e))
}

/// The count and bytes of the items of `ids_json` (a JSON array of ids) that exist.
const SIZES: &str = "SELECT COUNT(*) AS n, COALESCE(SUM(length(CAST(data AS BLOB))), 0) AS bytes \
     FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 \
     AND id IN (SELECT value FROM json_each(?4))";

/// Runs one operation and returns its JSON answer.
pub async fn run(
    db: &Db,
    user: &User,
    plugin_id: &str,
    collection: &str,
    op: CollectionOp,
    cursor_secret: &[u8],
) -> Result<Value, Error> {
    check_plugin_id(plugin_id)?;
    let decl = declaration(db, &user.id, plugin_id, collection).await?;
    let uid = user.id.as_str();
    let scope = || args![uid, plugin_id, collection];
    Ok(match op {
        CollectionOp::Get { id } => {
            check_item_id(&id)?;
            let mut a = scope();
            a.push(id.into());
            let row: Option<Item> = db
                .first(
                    "SELECT id, data FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 \
                     AND collection = ?3 AND id = ?4",
                    a,
                )
                .await?;
            json!({"item": row.map(|r| parse_data(&r.data)).transpose()?})
        }
        CollectionOp::Exists { id } => {
            check_item_id(&id)?;
            let sizes = sizes(db, uid, plugin_id, collection, &[id]).await?;
            json!({"exists": sizes.n > 0})
        }
        CollectionOp::GetMany { ids } => {
            check_batch(ids.len())?;
            for id in &ids {
                check_item_id(id)?;
            }
            let mut a = scope();
            a.push(ids_json(&ids)?.into());
            let rows: Vec<Item> = db
                .all(
                    "SELECT id, data FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 \
                     AND collection = ?3 AND id IN (SELECT value FROM json_each(?4))",
                    a,
                )
                .await?;
            let mut items = Map::new();
            for r in rows {
                items.insert(r.id, parse_data(&r.data)?);
            }
            json!({"items": items})
        }
        CollectionOp::Put { id, data } => {
            check_item_id(&id)?;
            let text = encode_item(&data)?;
            write(db, user, plugin_id, collection, vec![(id, Some(text))]).await?;
            json!({})
        }
        CollectionOp::PutMany { items } => {
            check_batch(items.len())?;
            let encoded = items
                .into_iter()
                .map(|CollectionItem { id, data }| {
                    check_item_id(&id)?;
                    Ok((id, Some(encode_item(&data)?)))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            write(db, user, plugin_id, collection, encoded).await?;
            json!({})
        }
        CollectionOp::Delete { id } => {
            check_item_id(&id)?;
            let deleted = write(db, user, plugin_id, collection, vec![(id, None)]).await?;
            json!({"deleted": deleted > 0})
        }
        CollectionOp::DeleteMany { ids } => {
            check_batch(ids.len())?;
            for id in &ids {
                check_item_id(id)?;
            }
            let changes = ids.into_iter().map(|id| (id, None)).collect();
            let deleted = write(db, user, plugin_id, collection, changes).await?;
            json!({"deleted": deleted})
        }
        CollectionOp::Query(opts) => {
            let vq = query::validate(&opts, &decl)?;
            let plan = query::plan_query(plugin_id, collection, uid, &vq, cursor_secret)?;
            let params = plan.params.iter().map(to_arg).collect();
            let found: Vec<Value> = db.all(&plan.sql, params).await?;
            // A NULL `data` is the first row past the page's byte cap: the page ends before it.
            let (mut rows, mut cut) = (Vec::new(), false);
            for r in found {
                let Some(data) = r["data"].as_str() else {
                    cut = true;
                    break;
                };
                rows.push(PlanRow {
                    id: r["id"].as_str().unwrap_or_default().to_string(),
                    data: parse_data(data)?,
                    sort_key: sort_key_of(&r["sort_key"]),
                });
            }
            serde_json::to_value(plan.finish_page(rows, cut)?)
                .map_err(|e| db::internal("query page", e))?
        }
        CollectionOp::Count { where_ } => {
            let filters = query::validate_where(where_.as_ref(), &decl)?;
            let stmt = query::plan_count(plugin_id, collection, uid, &filters)?;
            let params = stmt.params.iter().map(to_arg).collect();
            #[derive(Deserialize)]
            struct Count {
                count: i64,
            }
            let n: Option<Count> = db.first(&stmt.sql, params).await?;
            json!({"count": n.map(|c| c.count).unwrap_or(0)})
        }
    })
}

fn ids_json<S: AsRef<str>>(ids: &[S]) -> Result<String, Error> {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&ids).map_err(|e| db::internal("ids", e))
}

async fn sizes(
    db: &Db,
    uid: &str,
    plugin_id: &str,
    collection: &str,
    ids: &[String],
) -> Result<Sizes, Error> {
    db.first(SIZES, args![uid, plugin_id, collection, ids_json(ids)?])
        .await?
        .ok_or_else(|| db::internal("database read", "no row"))
}

/// Puts (`Some(text)`) or deletes (`None`) items in one guarded batch, charging the net size
/// change (growth must fit). Returns how many of the deleted ids existed.
async fn write(
    db: &Db,
    user: &User,
    plugin_id: &str,
    collection: &str,
    changes: Vec<(String, Option<String>)>,
) -> Result<u64, Error> {
    let uid = user.id.as_str();
    // The last change of an id wins, as in the native loop; sizes count each id once.
    let mut ids: Vec<String> = changes.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut last: std::collections::BTreeMap<&str, Option<&str>> = Default::default();
    for (id, text) in &changes {
        last.insert(id.as_str(), text.as_deref());
    }
    let new_bytes: i64 = last.values().flatten().map(|t| t.len() as i64).sum();
    let deleting = changes.iter().all(|(_, t)| t.is_none());
    for _ in 0..db::MAX_ATTEMPTS {
        let old = sizes(db, uid, plugin_id, collection, &ids).await?;
        // Puts replace the old bytes of their ids; deletes free them.
        let delta = new_bytes - old.bytes;
        if delta > 0 {
            let (used, reserved) = crate::users::usage_of(db, uid).await?;
            monodit_service::quota::check(used, reserved, delta as u64, user.limit_bytes())?;
        }
        let mut batch = vec![db::guard(
            db,
            &format!(
                "{DECLARED} AND (SELECT COUNT(*) || '/' || COALESCE(SUM(length(CAST(data AS BLOB))), 0) \
                 FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 \
                 AND id IN (SELECT value FROM json_each(?4))) = ?5 \
                 AND (?6 <= 0 OR (SELECT used_bytes + reserved_bytes + ?6 FROM users WHERE id = ?1) <= ?7)"
            ),
            args![
                uid,
                plugin_id,
                collection,
                ids_json(&ids)?,
                format!("{}/{}", old.n, old.bytes),
                delta,
                user.limit_bytes()
            ],
        )?];
        for (id, text) in &last {
            batch.push(match text {
                Some(t) => db.stmt(
                    &format!(
                        "INSERT INTO _plugin_storage (user_id, plugin_id, collection, id, data, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, {NOW_SQL}, {NOW_SQL}) \
                         ON CONFLICT (user_id, plugin_id, collection, id) DO UPDATE SET data = excluded.data, \
                           updated_at = excluded.updated_at"
                    ),
                    args![uid, plugin_id, collection, *id, *t],
                )?,
                None => db.stmt(
                    "DELETE FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2 AND collection = ?3 AND id = ?4",
                    args![uid, plugin_id, collection, *id],
                )?,
            });
        }
        batch.push(db.stmt(
            "UPDATE users SET used_bytes = used_bytes + ?2, collection_bytes = collection_bytes + ?2 WHERE id = ?1",
            args![uid, delta],
        )?);
        if db.guarded_batch(batch).await? {
            return Ok(if deleting { old.n.max(0) as u64 } else { 0 });
        }
        // The declaration went away, or a fact moved: the next round answers or decides again.
        declaration(db, uid, plugin_id, collection).await?;
    }
    Err(db::contended())
}

#[derive(Deserialize)]
struct PlanDetail {
    detail: String,
}

/// `POST /v1/dev/explain/{pluginId}/{collection}` (dev mode): `EXPLAIN QUERY PLAN` of the
/// SQL `run` would send for the query `opts` (`api::QueryPlanExplained`), as natively.
pub async fn explain(
    db: &Db,
    user: &User,
    plugin_id: &str,
    collection: &str,
    opts: &query::QueryOptions,
    cursor_secret: &[u8],
) -> Result<monodit_core::api::QueryPlanExplained, Error> {
    check_plugin_id(plugin_id)?;
    let decl = declaration(db, &user.id, plugin_id, collection).await?;
    let vq = query::validate(opts, &decl)?;
    let plan = query::plan_query(plugin_id, collection, &user.id, &vq, cursor_secret)?;
    let params = plan.params.iter().map(to_arg).collect();
    let rows: Vec<PlanDetail> = db
        .all(&format!("EXPLAIN QUERY PLAN {}", plan.sql), params)
        .await?;
    Ok(monodit_core::api::QueryPlanExplained {
        plan: rows.into_iter().map(|r| r.detail).collect(),
    })
}
