//! The user's instance state as the Worker decides on it: the facts read in one snapshot, the
//! guard that keeps a decision's batch from landing on changed facts, the revision bump, and
//! the declaration union and pin release computed from the instances a write leaves
//! (natively `server/src/store/collections.rs` `redeclare` and `server/src/store/plugins.rs`).

use crate::args;
use crate::db::{self, Db};
use monodit_core::api::Contract;
use monodit_core::buckets::Backend;
use monodit_core::limits;
use monodit_core::manifest::{Index, Manifest};
use monodit_core::Error;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use worker::d1::D1PreparedStatement;

/// A stored instance.
#[derive(Deserialize, Clone)]
pub(crate) struct InstanceRow {
    pub(crate) instance_id: String,
    pub(crate) kind: String,
    pub(crate) widget_id: String,
    pub(crate) manifest: String,
    pub(crate) config: String,
    pub(crate) source: Option<String>,
}

#[derive(Deserialize)]
struct DeclRow {
    plugin_id: String,
    indexes: String,
}

#[derive(Deserialize)]
struct PinRow {
    plugin_id: String,
    source: String,
}

#[derive(Deserialize)]
struct PluginRow {
    plugin_id: String,
}

#[derive(Deserialize)]
struct Revision {
    revision: i64,
}

/// What the user's instance state is, read in one snapshot.
pub(crate) struct Facts {
    revision: i64,
    pub(crate) instances: Vec<InstanceRow>,
    decls: Vec<DeclRow>,
    pub(crate) pins: BTreeMap<String, String>,
    pub(crate) with_data: BTreeSet<String>,
}

/// Reads the user's [`Facts`] in one batch.
pub(crate) async fn facts(db: &Db, user_id: &str) -> Result<Facts, Error> {
    let results =
        db.0.batch(vec![
            db.stmt(
                "SELECT revision FROM instance_revisions WHERE user_id = ?1",
                args![user_id],
            )?,
            db.stmt(
                "SELECT instance_id, kind, widget_id, manifest, config, source FROM instances \
                 WHERE user_id = ?1 ORDER BY instance_id",
                args![user_id],
            )?,
            db.stmt(
                "SELECT plugin_id, indexes FROM plugin_collections WHERE user_id = ?1",
                args![user_id],
            )?,
            db.stmt(
                "SELECT plugin_id, source FROM plugin_pins WHERE user_id = ?1",
                args![user_id],
            )?,
            db.stmt(
                "SELECT DISTINCT plugin_id FROM _plugin_storage WHERE user_id = ?1 \
                 UNION SELECT DISTINCT plugin_id FROM plugin_kv WHERE user_id = ?1",
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
    let revision = part(0)?
        .results::<Revision>()
        .map_err(row_err)?
        .first()
        .map(|r| r.revision)
        .unwrap_or(0);
    Ok(Facts {
        revision,
        instances: part(1)?.results().map_err(row_err)?,
        decls: part(2)?.results().map_err(row_err)?,
        pins: part(3)?
            .results::<PinRow>()
            .map_err(row_err)?
            .into_iter()
            .map(|p| (p.plugin_id, p.source))
            .collect(),
        with_data: part(4)?
            .results::<PluginRow>()
            .map_err(row_err)?
            .into_iter()
            .map(|p| p.plugin_id)
            .collect(),
    })
}

/// The guard of a write decided on [`Facts`]: the user's instance revision is unchanged,
/// and each plugin named with [`Guard::plugin_data`] still has (or still lacks) data.
pub(crate) struct Guard {
    cond: String,
    args: Vec<db::Arg>,
}

impl Guard {
    /// The revision condition.
    pub(crate) fn new(user_id: &str, facts: &Facts) -> Guard {
        Guard {
            cond: "COALESCE((SELECT revision FROM instance_revisions WHERE user_id = ?1), 0) = ?2"
                .to_string(),
            args: args![user_id, facts.revision],
        }
    }

    /// Binds `arg` and answers its placeholder (`?N`).
    fn bind(&mut self, arg: impl Into<db::Arg>) -> String {
        self.args.push(arg.into());
        format!("?{}", self.args.len())
    }

    /// Adds: `plugin_id` has data exactly when `facts` said so.
    pub(crate) fn plugin_data(mut self, facts: &Facts, plugin_id: &str) -> Guard {
        let p = self.bind(plugin_id);
        let had = self.bind(facts.with_data.contains(plugin_id) as i64);
        self.cond.push_str(&format!(
            " AND (EXISTS (SELECT 1 FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = {p}) \
             OR EXISTS (SELECT 1 FROM plugin_kv WHERE user_id = ?1 AND plugin_id = {p})) = {had}"
        ));
        self
    }

    /// Adds: the plugin's item count and bytes and kv entry count and bytes are `totals`.
    pub(crate) fn data_totals(mut self, plugin_id: &str, totals: [i64; 4]) -> Guard {
        let p = self.bind(plugin_id);
        let [n, nb, k, kb] = totals.map(|t| self.bind(t));
        self.cond.push_str(&format!(
            " AND (SELECT COUNT(*) FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = {p}) = {n} \
             AND (SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM _plugin_storage \
               WHERE user_id = ?1 AND plugin_id = {p}) = {nb} \
             AND (SELECT COUNT(*) FROM plugin_kv WHERE user_id = ?1 AND plugin_id = {p}) = {k} \
             AND (SELECT COALESCE(SUM(size), 0) FROM plugin_kv WHERE user_id = ?1 AND plugin_id = {p}) = {kb}"
        ));
        self
    }

    /// Adds: the bucket's contract is `contract` (None: the bucket does not exist).
    pub(crate) fn bucket_contract(
        mut self,
        backend: Backend,
        bucket_id: &str,
        contract: Option<&Contract>,
    ) -> Guard {
        let b = self.bind(backend.as_str());
        let k = self.bind(bucket_id);
        let v = self.bind(
            contract
                .map(|c| format!("{}/{}", c.schema_id, c.schema_version))
                .unwrap_or_default(),
        );
        self.cond.push_str(&format!(
            " AND COALESCE((SELECT schema_id || '/' || schema_version FROM buckets \
             WHERE user_id = ?1 AND backend = {b} AND bucket_id = {k}), '') = {v}"
        ));
        self
    }

    /// The guard statement.
    pub(crate) fn stmt(self, db: &Db) -> Result<D1PreparedStatement, Error> {
        db::guard(db, &self.cond, self.args)
    }
}

/// The statement that bumps the user's instance revision (in every write's batch).
pub(crate) fn bump(db: &Db, user_id: &str) -> Result<D1PreparedStatement, Error> {
    db.stmt(
        "INSERT INTO instance_revisions (user_id, revision) VALUES (?1, 1) \
         ON CONFLICT (user_id) DO UPDATE SET revision = revision + 1",
        args![user_id],
    )
}

pub(super) fn parse_stored(text: &str) -> Option<Manifest> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| Manifest::parse(&v).ok())
}

/// The union of what `instances` of `plugin_id` declare (collection → indexes), as natively
/// (`store::collections::redeclare`): one manifest can add but never take away.
fn union_of(instances: &[InstanceRow], plugin_id: &str) -> BTreeMap<String, Vec<Index>> {
    let mut union: BTreeMap<String, Vec<Index>> = BTreeMap::new();
    for i in instances.iter().filter(|i| i.widget_id == plugin_id) {
        let Some(m) = parse_stored(&i.manifest) else {
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
    union
}

/// Declared totals (plugin ids with collections, index declarations) of `decls`.
fn totals<'a>(decls: impl Iterator<Item = (&'a str, usize)>) -> (usize, usize) {
    let mut plugins = BTreeSet::new();
    let mut indexes = 0;
    for (p, n) in decls {
        plugins.insert(p);
        indexes += n;
    }
    (plugins.len(), indexes)
}

fn stored_index_count(text: &str) -> usize {
    serde_json::from_str::<Vec<Value>>(text)
        .map(|v| v.iter().filter(|x| x.is_string() || x.is_array()).count())
        .unwrap_or(0)
}

/// Redeclares `plugins` over `instances` (the state after the write): the statements, and
/// LIMIT_EXCEEDED when the user's declarations grow past core's limits.
pub(crate) fn redeclare(
    db: &Db,
    user_id: &str,
    facts: &Facts,
    instances: &[InstanceRow],
    plugins: &[&str],
) -> Result<Vec<D1PreparedStatement>, Error> {
    let before = totals(
        facts
            .decls
            .iter()
            .map(|d| (d.plugin_id.as_str(), stored_index_count(&d.indexes))),
    );
    let unions: Vec<(&str, BTreeMap<String, Vec<Index>>)> = plugins
        .iter()
        .map(|p| (*p, union_of(instances, p)))
        .collect();
    let kept = facts
        .decls
        .iter()
        .filter(|d| !plugins.contains(&d.plugin_id.as_str()))
        .map(|d| (d.plugin_id.as_str(), stored_index_count(&d.indexes)));
    let added = unions
        .iter()
        .flat_map(|(p, u)| u.values().map(move |ix| (*p, ix.len())));
    let after = totals(kept.chain(added));
    if after.0 > before.0 {
        limits::check_count(
            "plugin ids with collections",
            after.0,
            limits::MAX_DECLARED_PLUGINS_PER_USER,
        )?;
    }
    if after.1 > before.1 {
        limits::check_count(
            "index declarations",
            after.1,
            limits::MAX_INDEX_DECLARATIONS_PER_USER,
        )?;
    }
    let mut out = Vec::new();
    for (p, union) in unions {
        out.push(db.stmt(
            "DELETE FROM plugin_collections WHERE user_id = ?1 AND plugin_id = ?2",
            args![user_id, p],
        )?);
        for (name, indexes) in union {
            let text =
                serde_json::to_string(&indexes).map_err(|e| db::internal("declaration", e))?;
            out.push(db.stmt(
                "INSERT INTO plugin_collections (user_id, plugin_id, collection, indexes) VALUES (?1, ?2, ?3, ?4)",
                args![user_id, p, name, text],
            )?);
        }
    }
    Ok(out)
}

/// Forgets `plugin_id`'s pin when no instance of `instances` holds it and it has no data
/// (natively `store::plugins::release_if_unused`).
pub(crate) fn release_if_unused(
    db: &Db,
    user_id: &str,
    facts: &Facts,
    instances: &[InstanceRow],
    plugin_id: &str,
) -> Result<Option<D1PreparedStatement>, Error> {
    let held = instances.iter().any(|i| i.widget_id == plugin_id);
    if held || facts.with_data.contains(plugin_id) {
        return Ok(None);
    }
    Ok(Some(db.stmt(
        "DELETE FROM plugin_pins WHERE user_id = ?1 AND plugin_id = ?2",
        args![user_id, plugin_id],
    )?))
}
