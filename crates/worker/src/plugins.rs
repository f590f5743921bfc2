//! Plugin ids as a resource on D1 (`GET /v1/plugins`, `DELETE /v1/plugins/{pluginId}`), with
//! the native server's SQL and rules (`server/src/store/plugins.rs`).

use crate::args;
use crate::db::{self, Db};
use crate::instances::{self, Guard};
use crate::kv;
use monodit_core::api::{DeletedPlugin, PluginInfo};
use monodit_core::Error;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Pair {
    a: String,
    b: String,
}

#[derive(Deserialize)]
struct Totals {
    plugin_id: String,
    n: i64,
    bytes: i64,
}

fn info<'a>(out: &'a mut BTreeMap<String, PluginInfo>, id: &str) -> &'a mut PluginInfo {
    out.entry(id.to_string()).or_insert_with(|| PluginInfo {
        plugin_id: id.to_string(),
        source: None,
        instances: Vec::new(),
        items: 0,
        item_bytes: 0,
        kv_keys: 0,
        kv_bytes: 0,
    })
}

/// `GET /v1/plugins`: every plugin id with instances, data or a pin, in id order (one
/// snapshot).
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<PluginInfo>, Error> {
    let results = db
        .0
        .batch(vec![
            db.stmt(
                "SELECT widget_id AS a, instance_id AS b FROM instances \
                 WHERE user_id = ?1 AND widget_id <> '' ORDER BY instance_id",
                args![user_id],
            )?,
            db.stmt(
                "SELECT plugin_id, COUNT(*) AS n, COALESCE(SUM(length(CAST(data AS BLOB))), 0) AS bytes \
                 FROM _plugin_storage WHERE user_id = ?1 GROUP BY plugin_id",
                args![user_id],
            )?,
            db.stmt(
                "SELECT plugin_id, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes \
                 FROM plugin_kv WHERE user_id = ?1 GROUP BY plugin_id",
                args![user_id],
            )?,
            db.stmt(
                "SELECT plugin_id AS a, source AS b FROM plugin_pins WHERE user_id = ?1",
                args![user_id],
            )?,
        ])
        .await
        .map_err(|e| db::internal("database read", e))?;
    let part = |i: usize| {
        results
            .get(i)
            .ok_or_else(|| db::internal("database read", "a batch lost a result"))
    };
    let row_err = |e| db::internal("database row", e);
    let mut out: BTreeMap<String, PluginInfo> = BTreeMap::new();
    for p in part(0)?.results::<Pair>().map_err(row_err)? {
        info(&mut out, &p.a).instances.push(p.b);
    }
    for t in part(1)?.results::<Totals>().map_err(row_err)? {
        let i = info(&mut out, &t.plugin_id);
        (i.items, i.item_bytes) = (t.n.max(0) as u64, t.bytes.max(0) as u64);
    }
    for t in part(2)?.results::<Totals>().map_err(row_err)? {
        let i = info(&mut out, &t.plugin_id);
        (i.kv_keys, i.kv_bytes) = (t.n.max(0) as u64, t.bytes.max(0) as u64);
    }
    for p in part(3)?.results::<Pair>().map_err(row_err)? {
        info(&mut out, &p.a).source = Some(p.b);
    }
    Ok(out.into_values().collect())
}

#[derive(Deserialize)]
struct Held {
    items: i64,
    item_bytes: i64,
    keys: i64,
    kv_bytes: i64,
}

/// `DELETE /v1/plugins/{pluginId}`: removes the plugin's collection items and kv entries and
/// refunds their bytes. Its declaration stays as long as instances declare it; the pin is
/// released once no instance holds the id. One guarded batch: the data, the refund and the
/// instance state are as read.
pub async fn delete(db: &Db, user_id: &str, plugin_id: &str) -> Result<DeletedPlugin, Error> {
    kv::check_plugin_id(plugin_id)?;
    const HELD: &str = "(SELECT COUNT(*) FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2) AS items, \
         (SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM _plugin_storage \
            WHERE user_id = ?1 AND plugin_id = ?2) AS item_bytes, \
         (SELECT COUNT(*) FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2) AS keys, \
         (SELECT COALESCE(SUM(size), 0) FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2) AS kv_bytes";
    for _ in 0..db::MAX_ATTEMPTS {
        let facts = instances::facts(db, user_id).await?;
        let held_data: Held = db
            .first(&format!("SELECT {HELD}"), args![user_id, plugin_id])
            .await?
            .ok_or_else(|| db::internal("database read", "no row"))?;
        let held = facts.instances.iter().any(|i| i.widget_id == plugin_id);
        let mut batch = vec![
            Guard::new(user_id, &facts)
                .data_totals(
                    plugin_id,
                    [
                        held_data.items,
                        held_data.item_bytes,
                        held_data.keys,
                        held_data.kv_bytes,
                    ],
                )
                .stmt(db)?,
            instances::bump(db, user_id)?,
            db.stmt(
                "DELETE FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2",
                args![user_id, plugin_id],
            )?,
            db.stmt(
                "DELETE FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2",
                args![user_id, plugin_id],
            )?,
            db.stmt(
                "UPDATE users SET used_bytes = used_bytes - ?2 - ?3, \
                 collection_bytes = collection_bytes - ?2, kv_bytes = kv_bytes - ?3 WHERE id = ?1",
                args![user_id, held_data.item_bytes, held_data.kv_bytes],
            )?,
        ];
        if !held {
            batch.push(db.stmt(
                "DELETE FROM plugin_pins WHERE user_id = ?1 AND plugin_id = ?2",
                args![user_id, plugin_id],
            )?);
            batch.extend(instances::redeclare(
                db,
                user_id,
                &facts,
                &facts.instances,
                &[plugin_id],
            )?);
        }
        if db.guarded_batch(batch).await? {
            return Ok(DeletedPlugin {
                deleted_items: held_data.items.max(0) as u64,
                deleted_keys: held_data.keys.max(0) as u64,
                refunded_bytes: (held_data.item_bytes + held_data.kv_bytes).max(0) as u64,
                released: !held,
            });
        }
    }
    Err(db::contended())
}
