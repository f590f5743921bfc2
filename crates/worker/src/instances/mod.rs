//! Widget instances on D1 (`/v1/instances`), with the native server's tables and rules
//! (`server/src/store/instances.rs`, `collections.rs` declarations, `plugins.rs` pins): the
//! manifest and config a host registers, the buckets their bindings resolve to (core
//! `buckets`), re-link compatibility, the plugin-id claim (core `plugins`) and the union of
//! collection declarations per plugin (core `limits` bounds it).
//!
//! A registration rests on many facts (the user's instances, pins, declarations, the bound
//! buckets' contracts, whether a plugin has data). The Worker reads them in one snapshot,
//! decides in Rust, and writes one batch guarded by the user's instance revision
//! (`instance_revisions`, migration 0006: every write to this state bumps it) plus the facts
//! other writes change (bucket contracts, plugin data). A lost race decides again.
//!
//! The physical collection indexes the declarations name are built by the route once the
//! registration committed (`crate::indexes`; natively a background indexer follows them,
//! `server/src/store/indexes.rs`).

use crate::args;
use crate::db::{self, Db};
use crate::http;
use monodit_core::api::{Contract, InstanceInfo, InstanceKind, InstanceRegistration};
use monodit_core::buckets::{self as rules, Backend};
use monodit_core::limits;
use monodit_core::manifest::Manifest;
use monodit_core::plugins::{self, Holder};
use monodit_core::Error;
use monodit_service::instances::{resolve_all, Resolved};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use worker::d1::D1PreparedStatement;

mod state;
use state::parse_stored;
pub(crate) use state::{bump, facts, redeclare, release_if_unused, Facts, Guard, InstanceRow};

fn binding_statements(
    db: &Db,
    user_id: &str,
    instance_id: &str,
    resolved: &[Resolved],
) -> Result<Vec<D1PreparedStatement>, Error> {
    let mut out = vec![db.stmt(
        "DELETE FROM instance_bindings WHERE user_id = ?1 AND instance_id = ?2",
        args![user_id, instance_id],
    )?];
    for r in resolved {
        out.push(db.stmt(
            "INSERT INTO instance_bindings (user_id, instance_id, binding_key, backend, bucket_id, config_key, isolated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                user_id,
                instance_id,
                r.key.as_str(),
                r.backend.as_str(),
                r.bucket_id.as_str(),
                r.source_key.clone(),
                r.isolated as i64
            ],
        )?);
    }
    Ok(out)
}

fn kind_str(kind: InstanceKind) -> &'static str {
    match kind {
        InstanceKind::Widget => "widget",
        InstanceKind::Theme => "theme",
    }
}

#[derive(Deserialize)]
struct ContractRow {
    schema_id: String,
    schema_version: u32,
}

/// `PUT /v1/instances/{instanceId}`: the native rules in the native order (sizes, manifest,
/// bindings, re-link compatibility, source, instance cap, plugin-id claim, declarations).
pub async fn register(
    db: &Db,
    now_ms: i64,
    user_id: &str,
    instance_id: &str,
    reg: InstanceRegistration,
) -> Result<InstanceInfo, Error> {
    rules::validate_instance_id(instance_id)?;
    let manifest_text = to_text(&reg.manifest)?;
    let config_text = to_text(&reg.config)?;
    limits::check_size("manifest", manifest_text.len(), limits::MAX_MANIFEST_BYTES)?;
    limits::check_size("config", config_text.len(), limits::MAX_CONFIG_BYTES)?;
    let manifest = Manifest::parse(&reg.manifest)?;
    let resolved = resolve_all(&manifest, &reg.config, instance_id)?;
    for _ in 0..db::MAX_ATTEMPTS {
        // The contracts of the shared buckets the bindings name, as read now.
        let mut contracts: Vec<(usize, Option<Contract>)> = Vec::new();
        for (i, (r, b)) in resolved.iter().zip(&manifest.bindings).enumerate() {
            if r.isolated {
                continue;
            }
            let existing: Option<ContractRow> = db
                .first(
                    "SELECT schema_id, schema_version FROM buckets \
                     WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
                    args![user_id, r.backend.as_str(), r.bucket_id.as_str()],
                )
                .await?;
            let existing = existing.map(|c| Contract {
                backend: r.backend,
                schema_id: c.schema_id,
                schema_version: c.schema_version,
            });
            if let Some(c) = &existing {
                rules::check_compatible(c, &b.contract())?;
            }
            contracts.push((i, existing));
        }
        if let Some(source) = &reg.source {
            plugins::validate_source(source)?;
        }
        let facts = facts(db, user_id).await?;
        let previous = facts
            .instances
            .iter()
            .find(|i| i.instance_id == instance_id)
            .cloned();
        if previous.is_none() {
            limits::check_count(
                "registered instances",
                facts.instances.len() + 1,
                limits::MAX_INSTANCES_PER_USER,
            )?;
        }
        let source = reg
            .source
            .clone()
            .or(previous.as_ref().and_then(|p| p.source.clone()));
        let mut batch = Vec::new();
        let widget_id = manifest.id.clone().unwrap_or_default();
        if let Some(plugin_id) = &manifest.id {
            let holders: Vec<Holder> = facts
                .instances
                .iter()
                .filter(|i| &i.widget_id == plugin_id && i.instance_id != instance_id)
                .map(|i| Holder {
                    instance_id: i.instance_id.clone(),
                    source: i.source.clone(),
                })
                .collect();
            let retained = facts
                .pins
                .get(plugin_id)
                .filter(|_| facts.with_data.contains(plugin_id))
                .map(String::as_str);
            plugins::check_claim(plugin_id, source.as_deref(), &holders, retained)?;
            if let Some(source) = &source {
                batch.push(db.stmt(
                    "INSERT INTO plugin_pins (user_id, plugin_id, source) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id, plugin_id) DO UPDATE SET source = excluded.source",
                    args![user_id, plugin_id.as_str(), source.as_str()],
                )?);
            }
        }
        let row = InstanceRow {
            instance_id: instance_id.to_string(),
            kind: kind_str(reg.kind).to_string(),
            widget_id: widget_id.clone(),
            manifest: manifest_text.clone(),
            config: config_text.clone(),
            source: source.clone(),
        };
        let mut after: Vec<InstanceRow> = facts
            .instances
            .iter()
            .filter(|i| i.instance_id != instance_id)
            .cloned()
            .collect();
        after.push(row);
        batch.push(db.stmt(
            "INSERT INTO instances (user_id, instance_id, kind, widget_id, manifest, config, updated_at, source) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (user_id, instance_id) DO UPDATE SET kind = excluded.kind, \
               widget_id = excluded.widget_id, manifest = excluded.manifest, \
               config = excluded.config, updated_at = excluded.updated_at, source = excluded.source",
            args![
                user_id,
                instance_id,
                kind_str(reg.kind),
                widget_id.as_str(),
                manifest_text.as_str(),
                config_text.as_str(),
                now_ms,
                source.clone()
            ],
        )?);
        batch.extend(binding_statements(db, user_id, instance_id, &resolved)?);
        let old_plugin = previous
            .as_ref()
            .map(|p| p.widget_id.clone())
            .filter(|p| !p.is_empty() && Some(p) != manifest.id.as_ref());
        let mut affected: Vec<&str> = manifest.id.iter().map(String::as_str).collect();
        affected.extend(old_plugin.as_deref());
        batch.extend(redeclare(db, user_id, &facts, &after, &affected)?);
        if let Some(old) = old_plugin.as_deref() {
            batch.extend(release_if_unused(db, user_id, &facts, &after, old)?);
        }
        // Guard: nothing in the user's instance state moved, plugin data is as read, and the
        // shared buckets' contracts are as read.
        let mut g = Guard::new(user_id, &facts);
        for p in &affected {
            g = g.plugin_data(&facts, p);
        }
        for (i, c) in &contracts {
            let r = &resolved[*i];
            g = g.bucket_contract(r.backend, &r.bucket_id, c.as_ref());
        }
        let mut full = vec![g.stmt(db)?, bump(db, user_id)?];
        full.extend(batch);
        if db.guarded_batch(full).await? {
            return Ok(InstanceInfo {
                instance_id: instance_id.to_string(),
                kind: reg.kind,
                widget_id,
                manifest: reg.manifest,
                config: reg.config,
                buckets: resolved.into_iter().map(|r| (r.key, r.bucket_id)).collect(),
                source,
            });
        }
    }
    Err(db::contended())
}

/// Compact JSON of a registration's part.
fn to_text<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::invalid(e.to_string()))
}

fn info_of(row: InstanceRow, buckets: BTreeMap<String, String>) -> Result<InstanceInfo, Error> {
    let kind = if row.kind == "theme" {
        InstanceKind::Theme
    } else {
        InstanceKind::Widget
    };
    Ok(InstanceInfo {
        instance_id: row.instance_id,
        kind,
        widget_id: row.widget_id,
        manifest: serde_json::from_str(&row.manifest)
            .map_err(|e| db::internal("stored manifest", e))?,
        config: serde_json::from_str(&row.config).map_err(|e| db::internal("stored config", e))?,
        buckets,
        source: row.source,
    })
}

#[derive(Deserialize)]
struct BindingRow {
    instance_id: String,
    binding_key: String,
    bucket_id: String,
}

/// `GET /v1/instances`: every registered instance with its resolved buckets (one snapshot).
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<InstanceInfo>, Error> {
    let results = db
        .0
        .batch(vec![
            db.stmt(
                "SELECT instance_id, kind, widget_id, manifest, config, source FROM instances \
                 WHERE user_id = ?1 ORDER BY instance_id",
                args![user_id],
            )?,
            db.stmt(
                "SELECT instance_id, binding_key, bucket_id FROM instance_bindings WHERE user_id = ?1",
                args![user_id],
            )?,
        ])
        .await
        .map_err(|e| db::internal("database read", e))?;
    let (Some(rows), Some(bindings)) = (results.first(), results.get(1)) else {
        return Err(db::internal("database read", "a batch lost a result"));
    };
    let rows: Vec<InstanceRow> = rows
        .results()
        .map_err(|e| db::internal("database row", e))?;
    let mut by_instance: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for b in bindings
        .results::<BindingRow>()
        .map_err(|e| db::internal("database row", e))?
    {
        by_instance
            .entry(b.instance_id)
            .or_default()
            .insert(b.binding_key, b.bucket_id);
    }
    rows.into_iter()
        .map(|r| {
            let b = by_instance.remove(&r.instance_id).unwrap_or_default();
            info_of(r, b)
        })
        .collect()
}

/// `DELETE /v1/instances/{instanceId}` (its buckets stay: they belong to the user); what the
/// plugin's remaining instances declare is all that stays declared.
pub async fn delete(db: &Db, user_id: &str, instance_id: &str) -> Result<(), Error> {
    rules::validate_instance_id(instance_id)?;
    for _ in 0..db::MAX_ATTEMPTS {
        let facts = facts(db, user_id).await?;
        let Some(row) = facts
            .instances
            .iter()
            .find(|i| i.instance_id == instance_id)
            .cloned()
        else {
            return Err(http::not_found(format!("no instance {instance_id:?}")));
        };
        let after: Vec<InstanceRow> = facts
            .instances
            .iter()
            .filter(|i| i.instance_id != instance_id)
            .cloned()
            .collect();
        let plugin = (!row.widget_id.is_empty()).then_some(row.widget_id.as_str());
        let affected: Vec<&str> = plugin.into_iter().collect();
        let mut g = Guard::new(user_id, &facts);
        for p in &affected {
            g = g.plugin_data(&facts, p);
        }
        let mut batch = vec![g.stmt(db)?, bump(db, user_id)?];
        batch.push(db.stmt(
            "DELETE FROM instances WHERE user_id = ?1 AND instance_id = ?2",
            args![user_id, instance_id],
        )?);
        batch.push(db.stmt(
            "DELETE FROM instance_bindings WHERE user_id = ?1 AND instance_id = ?2",
            args![user_id, instance_id],
        )?);
        if let Some(p) = plugin {
            batch.extend(redeclare(db, user_id, &facts, &after, &[p])?);
            batch.extend(release_if_unused(db, user_id, &facts, &after, p)?);
        }
        if db.guarded_batch(batch).await? {
            return Ok(());
        }
    }
    Err(db::contended())
}

#[derive(Deserialize)]
struct Configured {
    instance_id: String,
    config_key: String,
}

/// For a bucket deletion: the statements that clear the config field of every instance
/// connected to the bucket through config (it falls back to its isolated default) and
/// re-resolve its bindings, with the ids of those instances (natively
/// `store::instances::disconnect_bucket`). The caller's batch also carries a [`Guard`] and
/// [`bump`] on the same facts.
pub(crate) async fn disconnect_bucket(
    db: &Db,
    user_id: &str,
    facts: &Facts,
    backend: Backend,
    bucket_id: &str,
    now_ms: i64,
) -> Result<(Vec<D1PreparedStatement>, Vec<String>), Error> {
    let targets: Vec<Configured> = db
        .all(
            "SELECT instance_id, config_key FROM instance_bindings \
             WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3 AND config_key IS NOT NULL \
             ORDER BY instance_id",
            args![user_id, backend.as_str(), bucket_id],
        )
        .await?;
    let mut configs: BTreeMap<String, (Map<String, Value>, String)> = BTreeMap::new();
    for t in targets {
        let Some(row) = facts
            .instances
            .iter()
            .find(|i| i.instance_id == t.instance_id)
        else {
            continue;
        };
        let entry = configs.entry(t.instance_id.clone()).or_insert_with(|| {
            (
                serde_json::from_str(&row.config).unwrap_or_default(),
                row.manifest.clone(),
            )
        });
        entry.0.remove(&t.config_key);
    }
    let mut out = Vec::new();
    let mut changed = Vec::new();
    for (instance_id, (config, manifest_text)) in configs {
        let text = serde_json::to_string(&config).map_err(|e| db::internal("config", e))?;
        out.push(db.stmt(
            "UPDATE instances SET config = ?3, updated_at = ?4 WHERE user_id = ?1 AND instance_id = ?2",
            args![user_id, instance_id.as_str(), text, now_ms],
        )?);
        // A stored manifest that no longer parses keeps its old bindings, as natively.
        if let Some(manifest) = parse_stored(&manifest_text) {
            if let Ok(resolved) = resolve_all(&manifest, &config, &instance_id) {
                out.extend(binding_statements(db, user_id, &instance_id, &resolved)?);
            }
        }
        changed.push(instance_id);
    }
    Ok((out, changed))
}
