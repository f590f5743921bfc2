//! Plugin ids as a resource: which ids the user has (instances, collection items, kv entries,
//! the source each is pinned to), deleting a plugin's data, and the pins core `plugins`
//! decides with.

use crate::error::AppResult;
use crate::store::{collections, kv, quota};
use monodit_core::api::{DeletedPlugin, PluginInfo};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// The source `plugin_id` is pinned to while it still has data, for core `check_claim`.
pub fn retained_pin(
    tx: &Transaction<'_>,
    user_id: &str,
    plugin_id: &str,
) -> AppResult<Option<String>> {
    let pin: Option<String> = tx
        .query_row(
            "SELECT source FROM plugin_pins WHERE user_id = ?1 AND plugin_id = ?2",
            params![user_id, plugin_id],
            |r| r.get(0),
        )
        .optional()?;
    if pin.is_none() || !has_data(tx, user_id, plugin_id)? {
        return Ok(None);
    }
    Ok(pin)
}

/// Records that `source` holds `plugin_id` (the last accepted claim wins).
pub fn pin(tx: &Transaction<'_>, user_id: &str, plugin_id: &str, source: &str) -> AppResult<()> {
    tx.execute(
        "INSERT INTO plugin_pins (user_id, plugin_id, source) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id, plugin_id) DO UPDATE SET source = excluded.source",
        params![user_id, plugin_id, source],
    )?;
    Ok(())
}

/// After an instance stopped holding `plugin_id`: forgets its pin when no instance holds the
/// id and the plugin has no data. Such a pin decides nothing ([`retained_pin`] ignores it),
/// and keeping it would let a user grow `plugin_pins` without bound by registering and
/// removing instances under ever new ids, none of it charged.
pub fn release_if_unused(tx: &Transaction<'_>, user_id: &str, plugin_id: &str) -> AppResult<()> {
    let held: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM instances WHERE user_id = ?1 AND widget_id = ?2)",
        params![user_id, plugin_id],
        |r| r.get(0),
    )?;
    if !held && !has_data(tx, user_id, plugin_id)? {
        tx.execute(
            "DELETE FROM plugin_pins WHERE user_id = ?1 AND plugin_id = ?2",
            params![user_id, plugin_id],
        )?;
    }
    Ok(())
}

fn has_data(tx: &Transaction<'_>, user_id: &str, plugin_id: &str) -> AppResult<bool> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2) \
             OR EXISTS (SELECT 1 FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2)",
        params![user_id, plugin_id],
        |r| r.get(0),
    )?)
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

/// `GET /v1/plugins`: every plugin id with instances, data or a pin, in id order.
pub fn list(tx: &Transaction<'_>, user_id: &str) -> AppResult<Vec<PluginInfo>> {
    let pairs = |sql: &str| -> AppResult<Vec<(String, String)>> {
        Ok(tx
            .prepare(sql)?
            .query_map(params![user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    };
    let totals = |sql: &str| -> AppResult<Vec<(String, i64, i64)>> {
        Ok(tx
            .prepare(sql)?
            .query_map(params![user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    };
    let mut out: BTreeMap<String, PluginInfo> = BTreeMap::new();
    for (plugin, instance) in pairs(
        "SELECT widget_id, instance_id FROM instances \
         WHERE user_id = ?1 AND widget_id <> '' ORDER BY instance_id",
    )? {
        info(&mut out, &plugin).instances.push(instance);
    }
    for (plugin, count, bytes) in totals(
        "SELECT plugin_id, COUNT(*), COALESCE(SUM(length(CAST(data AS BLOB))), 0) \
         FROM _plugin_storage WHERE user_id = ?1 GROUP BY plugin_id",
    )? {
        let i = info(&mut out, &plugin);
        (i.items, i.item_bytes) = (count as u64, bytes as u64);
    }
    for (plugin, count, bytes) in totals(
        "SELECT plugin_id, COUNT(*), COALESCE(SUM(size), 0) \
         FROM plugin_kv WHERE user_id = ?1 GROUP BY plugin_id",
    )? {
        let i = info(&mut out, &plugin);
        (i.kv_keys, i.kv_bytes) = (count as u64, bytes as u64);
    }
    for (plugin, source) in pairs("SELECT plugin_id, source FROM plugin_pins WHERE user_id = ?1")? {
        info(&mut out, &plugin).source = Some(source);
    }
    Ok(out.into_values().collect())
}

/// `DELETE /v1/plugins/{pluginId}`: removes the plugin's collection items and kv entries and
/// refunds their bytes. Its declaration stays as long as instances declare it; the pin is
/// released once no instance holds the id.
pub fn delete(tx: &Transaction<'_>, user_id: &str, plugin_id: &str) -> AppResult<DeletedPlugin> {
    kv::check_plugin_id(plugin_id)?;
    let (items, item_bytes): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM _plugin_storage \
         WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, plugin_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (keys, kv_bytes): (i64, i64) = tx.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, plugin_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.execute(
        "DELETE FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, plugin_id],
    )?;
    tx.execute(
        "DELETE FROM plugin_kv WHERE user_id = ?1 AND plugin_id = ?2",
        params![user_id, plugin_id],
    )?;
    quota::adjust_used(tx, user_id, -item_bytes, true)?;
    quota::adjust_kv(tx, user_id, -kv_bytes)?;
    let held: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM instances WHERE user_id = ?1 AND widget_id = ?2)",
        params![user_id, plugin_id],
        |r| r.get(0),
    )?;
    if !held {
        tx.execute(
            "DELETE FROM plugin_pins WHERE user_id = ?1 AND plugin_id = ?2",
            params![user_id, plugin_id],
        )?;
        collections::redeclare(tx, user_id, plugin_id)?;
    }
    Ok(DeletedPlugin {
        deleted_items: items as u64,
        deleted_keys: keys as u64,
        refunded_bytes: (item_bytes + kv_bytes) as u64,
        released: !held,
    })
}
