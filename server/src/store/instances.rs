//! Widget instances (for topology): manifest + config registered by the host, the buckets
//! their bindings resolve to (core's seed 000 rules), re-link compatibility, and the plugin
//! collection declarations their manifests carry (seed 003).

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::{buckets, collections, users::parse_backend};
use monodit_core::api::{InstanceInfo, InstanceKind, InstanceRegistration};
use monodit_core::buckets::{self as rules, Backend};
use monodit_core::limits;
use monodit_core::manifest::Manifest;
use monodit_core::plugins::{self, Holder};
use monodit_service::instances::{resolve_all, Resolved};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn kind_str(kind: InstanceKind) -> &'static str {
    match kind {
        InstanceKind::Widget => "widget",
        InstanceKind::Theme => "theme",
    }
}

fn write_bindings(
    tx: &Transaction<'_>,
    user_id: &str,
    instance_id: &str,
    resolved: &[Resolved],
) -> AppResult<()> {
    tx.execute(
        "DELETE FROM instance_bindings WHERE user_id = ?1 AND instance_id = ?2",
        params![user_id, instance_id],
    )?;
    for r in resolved {
        tx.execute(
            "INSERT INTO instance_bindings (user_id, instance_id, binding_key, backend, bucket_id, config_key, isolated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                user_id,
                instance_id,
                r.key,
                r.backend.as_str(),
                r.bucket_id,
                r.source_key,
                r.isolated as i64
            ],
        )?;
    }
    Ok(())
}

/// `PUT /v1/instances/{instanceId}`: validates the manifest (INVALID_MANIFEST with every
/// problem), resolves each binding's bucket, refuses a re-link to a bucket created with another
/// contract (INCOMPATIBLE_BUCKET; an instance's own default bucket is not checked here, so a
/// schema upgrade never blocks mounting: its writes report the mismatch instead), refuses a
/// plugin id held by instances of another source (PLUGIN_ID_TAKEN, core `plugins`), stores
/// it, and registers the manifest's collection declarations.
pub fn register(
    tx: &Transaction<'_>,
    user_id: &str,
    instance_id: &str,
    reg: InstanceRegistration,
) -> AppResult<InstanceInfo> {
    rules::validate_instance_id(instance_id)?;
    // Instance rows are not charged to the quota (a Free user must still mount widgets), so
    // what one holds is capped instead (core `limits`), before anything is parsed or stored.
    let manifest_text = serde_json::to_string(&reg.manifest)?;
    let config_text = serde_json::to_string(&reg.config)?;
    limits::check_size("manifest", manifest_text.len(), limits::MAX_MANIFEST_BYTES)?;
    limits::check_size("config", config_text.len(), limits::MAX_CONFIG_BYTES)?;
    let manifest = Manifest::parse(&reg.manifest)?;
    let resolved = resolve_all(&manifest, &reg.config, instance_id)?;
    for (r, b) in resolved.iter().zip(&manifest.bindings) {
        if r.isolated {
            continue;
        }
        if let Some(existing) = buckets::get(tx, user_id, r.backend, &r.bucket_id)? {
            rules::check_compatible(&existing.contract, &b.contract())?;
        }
    }
    if let Some(source) = &reg.source {
        plugins::validate_source(source)?;
    }
    let previous: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT widget_id, source FROM instances WHERE user_id = ?1 AND instance_id = ?2",
            params![user_id, instance_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if previous.is_none() {
        let held: i64 = tx.query_row(
            "SELECT COUNT(*) FROM instances WHERE user_id = ?1",
            params![user_id],
            |r| r.get(0),
        )?;
        limits::check_count(
            "registered instances",
            held as usize + 1,
            limits::MAX_INSTANCES_PER_USER,
        )?;
    }
    let (previous_plugin, previous_source) = previous.unzip();
    // A registration that names no source (an older host) keeps, and is checked as, the
    // source the instance already has.
    let source = reg.source.clone().or(previous_source.flatten());
    if let Some(plugin_id) = &manifest.id {
        let holders = tx
            .prepare(
                "SELECT instance_id, source FROM instances \
                 WHERE user_id = ?1 AND widget_id = ?2 AND instance_id <> ?3",
            )?
            .query_map(params![user_id, plugin_id, instance_id], |r| {
                Ok(Holder {
                    instance_id: r.get(0)?,
                    source: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let retained = crate::store::plugins::retained_pin(tx, user_id, plugin_id)?;
        plugins::check_claim(plugin_id, source.as_deref(), &holders, retained.as_deref())?;
        if let Some(source) = &source {
            crate::store::plugins::pin(tx, user_id, plugin_id, source)?;
        }
    }
    tx.execute(
        "INSERT INTO instances (user_id, instance_id, kind, widget_id, manifest, config, updated_at, source) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (user_id, instance_id) DO UPDATE SET kind = excluded.kind, \
           widget_id = excluded.widget_id, manifest = excluded.manifest, \
           config = excluded.config, updated_at = excluded.updated_at, source = excluded.source",
        params![
            user_id,
            instance_id,
            kind_str(reg.kind),
            manifest.id.as_deref().unwrap_or(""),
            manifest_text,
            config_text,
            now_ms(),
            source
        ],
    )?;
    write_bindings(tx, user_id, instance_id, &resolved)?;
    let declared_before = collections::declared(tx, user_id)?;
    collections::register(tx, user_id, &manifest)?;
    if let Some(old) = previous_plugin.filter(|p| !p.is_empty() && Some(p) != manifest.id.as_ref())
    {
        // The instance now claims another plugin id: its old plugin loses its declaration.
        collections::redeclare(tx, user_id, &old)?;
        crate::store::plugins::release_if_unused(tx, user_id, &old)?;
    }
    collections::check_declared(declared_before, collections::declared(tx, user_id)?)?;
    Ok(InstanceInfo {
        instance_id: instance_id.to_string(),
        kind: reg.kind,
        widget_id: manifest.id.clone().unwrap_or_default(),
        manifest: reg.manifest,
        config: reg.config,
        buckets: resolved.into_iter().map(|r| (r.key, r.bucket_id)).collect(),
        source,
    })
}

/// A stored instance: kind, widget id, manifest, config, source.
type Stored = (
    InstanceKind,
    String,
    Value,
    Map<String, Value>,
    Option<String>,
);

fn load(tx: &Transaction<'_>, user_id: &str, instance_id: &str) -> AppResult<Option<Stored>> {
    let row = tx
        .query_row(
            "SELECT kind, widget_id, manifest, config, source FROM instances WHERE user_id = ?1 AND instance_id = ?2",
            params![user_id, instance_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, widget_id, manifest, config, source)) = row else {
        return Ok(None);
    };
    let kind = if kind == "theme" {
        InstanceKind::Theme
    } else {
        InstanceKind::Widget
    };
    Ok(Some((
        kind,
        widget_id,
        serde_json::from_str(&manifest)?,
        serde_json::from_str(&config)?,
        source,
    )))
}

/// `GET /v1/instances`: every registered instance with its resolved buckets.
pub fn list(tx: &Transaction<'_>, user_id: &str) -> AppResult<Vec<InstanceInfo>> {
    let ids: Vec<String> = tx
        .prepare("SELECT instance_id FROM instances WHERE user_id = ?1 ORDER BY instance_id")?
        .query_map(params![user_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut bindings: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    {
        let mut stmt = tx.prepare(
            "SELECT instance_id, binding_key, bucket_id FROM instance_bindings WHERE user_id = ?1",
        )?;
        for row in stmt.query_map(params![user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })? {
            let (i, k, b) = row?;
            bindings.entry(i).or_default().insert(k, b);
        }
    }
    let mut out = Vec::new();
    for id in ids {
        if let Some((kind, widget_id, manifest, config, source)) = load(tx, user_id, &id)? {
            out.push(InstanceInfo {
                buckets: bindings.remove(&id).unwrap_or_default(),
                instance_id: id,
                kind,
                widget_id,
                manifest,
                config,
                source,
            });
        }
    }
    Ok(out)
}

/// `DELETE /v1/instances/{instanceId}` (its buckets stay: they belong to the user).
pub fn delete(tx: &Transaction<'_>, user_id: &str, instance_id: &str) -> AppResult<()> {
    rules::validate_instance_id(instance_id)?;
    let plugin_id: Option<String> = tx
        .query_row(
            "SELECT widget_id FROM instances WHERE user_id = ?1 AND instance_id = ?2",
            params![user_id, instance_id],
            |r| r.get(0),
        )
        .optional()?;
    let n = tx.execute(
        "DELETE FROM instances WHERE user_id = ?1 AND instance_id = ?2",
        params![user_id, instance_id],
    )?;
    if let Some(plugin_id) = plugin_id.filter(|p| !p.is_empty()) {
        // What the remaining instances of the plugin declare is all that stays declared.
        collections::redeclare(tx, user_id, &plugin_id)?;
        crate::store::plugins::release_if_unused(tx, user_id, &plugin_id)?;
    }
    tx.execute(
        "DELETE FROM instance_bindings WHERE user_id = ?1 AND instance_id = ?2",
        params![user_id, instance_id],
    )?;
    if n == 0 {
        return Err(AppError::not_found(format!("no instance {instance_id:?}")));
    }
    Ok(())
}

/// After a bucket is deleted: clears the config field of every instance that was connected to
/// it through config, so it falls back to its isolated default, and re-resolves its bindings.
/// Returns the instance ids it changed.
pub fn disconnect_bucket(
    tx: &Transaction<'_>,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
) -> AppResult<Vec<String>> {
    let targets: Vec<(String, String)> = tx
        .prepare(
            "SELECT instance_id, config_key FROM instance_bindings \
             WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3 AND config_key IS NOT NULL \
             ORDER BY instance_id",
        )?
        .query_map(params![user_id, backend.as_str(), bucket_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut changed: Vec<String> = Vec::new();
    for (instance_id, config_key) in targets {
        let Some((_, _, manifest_json, mut config, _)) = load(tx, user_id, &instance_id)? else {
            continue;
        };
        config.remove(&config_key);
        tx.execute(
            "UPDATE instances SET config = ?3, updated_at = ?4 WHERE user_id = ?1 AND instance_id = ?2",
            params![user_id, instance_id, serde_json::to_string(&config)?, now_ms()],
        )?;
        // The stored manifest was valid when registered; if core's rules changed since, keep
        // the cleared config and leave the old bindings rather than failing the deletion.
        if let Ok(manifest) = Manifest::parse(&manifest_json) {
            if let Ok(resolved) = resolve_all(&manifest, &config, &instance_id) {
                write_bindings(tx, user_id, &instance_id, &resolved)?;
            }
        }
        if !changed.contains(&instance_id) {
            changed.push(instance_id);
        }
    }
    Ok(changed)
}

/// The backend spelling check used by routes (`d1-json` / `r2-assets`).
pub fn backend_from_path(s: &str) -> AppResult<Backend> {
    parse_backend(s).ok_or_else(|| {
        AppError::invalid(format!(
            "unknown backend {s:?}: expected \"d1-json\" or \"r2-assets\""
        ))
    })
}
