//! The physical expression indexes on `_plugin_storage`, built in the background.
//!
//! Declarations (`plugin_collections`, per user) decide what a user may query; the indexes
//! only make those queries fast. One index definition (core's `index_ddl`: plugin id,
//! collection, fields) serves every user of that plugin, since it is led by `user_id` and its
//! `WHERE` names only the plugin and collection. So the wanted set is the union of the
//! declarations of users whose plan includes storage (a Free user's declarations build
//! nothing), ranked by how many users declare each definition and cut at the server's
//! ceiling (`Config::max_index_definitions`), so widely shared definitions win over one
//! account's.
//!
//! Building happens off the request path: registrations only write declarations and
//! [`Indexer::wake`] a task that compares the wanted set with `plugin_indexes` (read on a
//! reader connection) and then creates or drops one index per writer transaction, so other
//! users' writes interleave between steps instead of waiting behind a whole manifest's
//! worth of `CREATE INDEX`; it rests as long as each step took, so it holds the writer at
//! most about half the time however often declarations change. A query whose index is not
//! built yet (or was cut by the ceiling) still answers correctly: the planner's SQL names no
//! index, so SQLite reads the user's rows of that collection through the primary key.

use crate::db::Db;
use crate::error::AppResult;
use crate::store::collections::decl_from_json;
use crate::store::users::plan_str;
use monodit_core::api::Plan;
use monodit_core::query;
use rusqlite::{params, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the indexer looks again without being woken (plan changes made by another
/// process, a step that failed).
const RECHECK: Duration = Duration::from_secs(60);

/// Longest rest between two steps (see [`pass`]).
const MAX_REST: Duration = Duration::from_secs(5);

/// One index the server wants: its name, table statement, and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// Core's `index_ddl` name.
    pub name: String,
    /// `CREATE INDEX IF NOT EXISTS ...`.
    pub sql: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Collection.
    pub collection: String,
}

/// One change to make, in one writer transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Build an index.
    Create(Wanted),
    /// Drop an index no storage user declares any more (or that the ceiling cut).
    Drop(String),
}

/// The indexes wanted now: the definitions declared by users whose plan includes storage,
/// ranked by [`rank`], at most `max`.
pub fn wanted(
    tx: &Transaction<'_>,
    max: usize,
    built: &BTreeSet<String>,
) -> AppResult<Vec<Wanted>> {
    let plans: Vec<&str> = [Plan::Free, Plan::Pro]
        .into_iter()
        .filter(|p| p.storage_enabled())
        .map(plan_str)
        .collect();
    let mut by_name: BTreeMap<String, (Wanted, usize)> = BTreeMap::new();
    let mut stmt = tx.prepare(
        "SELECT pc.plugin_id, pc.collection, pc.indexes, u.plan FROM plugin_collections pc \
         JOIN users u ON u.id = pc.user_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (plugin_id, collection, indexes, plan) = row?;
        if !plans.contains(&plan.as_str()) {
            continue;
        }
        for index in decl_from_json(&indexes).indexes {
            // Stored declarations were valid when registered; one core no longer accepts
            // builds nothing rather than stopping every other index.
            let Ok((name, sql)) = query::index_ddl(&plugin_id, &collection, &index) else {
                continue;
            };
            // A user's union lists each index once per collection, so this counts users.
            by_name
                .entry(name.clone())
                .or_insert_with(|| {
                    let w = Wanted {
                        name,
                        sql,
                        plugin_id: plugin_id.clone(),
                        collection: collection.clone(),
                    };
                    (w, 0)
                })
                .1 += 1;
        }
    }
    Ok(rank(by_name.into_values().collect(), built, max))
}

/// Which definitions fit under the ceiling `max`: the most-declared first (`users` is how
/// many users declare each); among equals, those already built (so a newcomer declared as
/// often never evicts a built index, which would only churn), then by name.
pub fn rank(
    mut candidates: Vec<(Wanted, usize)>,
    built: &BTreeSet<String>,
    max: usize,
) -> Vec<Wanted> {
    candidates.sort_by(|(a, a_users), (b, b_users)| {
        b_users
            .cmp(a_users)
            .then_with(|| built.contains(&b.name).cmp(&built.contains(&a.name)))
            .then_with(|| a.name.cmp(&b.name))
    });
    candidates.into_iter().take(max).map(|(w, _)| w).collect()
}

/// The indexes built so far (`plugin_indexes`).
pub fn built(tx: &Transaction<'_>) -> AppResult<BTreeSet<String>> {
    Ok(tx
        .prepare("SELECT name FROM plugin_indexes")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// What to change to get from `built` to `wanted`: drops first (they free room under the
/// ceiling and are cheap), then creations in rank order.
pub fn plan(wanted: &[Wanted], built: &BTreeSet<String>) -> Vec<Step> {
    let names: BTreeSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let drops = built
        .iter()
        .filter(|n| !names.contains(n.as_str()))
        .map(|n| Step::Drop(n.clone()));
    let creates = wanted
        .iter()
        .filter(|w| !built.contains(&w.name))
        .map(|w| Step::Create(w.clone()));
    drops.chain(creates).collect()
}

/// Applies one step (idempotent: `IF NOT EXISTS` / `IF EXISTS`, so a stale plan is harmless
/// and the next pass corrects it).
pub fn apply(tx: &Transaction<'_>, step: &Step) -> AppResult<()> {
    match step {
        Step::Create(w) => {
            tx.execute_batch(&w.sql)?;
            tx.execute(
                "INSERT OR IGNORE INTO plugin_indexes (name, plugin_id, collection) VALUES (?1, ?2, ?3)",
                params![w.name, w.plugin_id, w.collection],
            )?;
        }
        Step::Drop(name) => {
            // Names come from core's index_ddl (grammar-checked identifiers + hex), never
            // from input.
            tx.execute_batch(&format!(
                "DROP INDEX IF EXISTS \"{}\"",
                name.replace('"', "")
            ))?;
            tx.execute("DELETE FROM plugin_indexes WHERE name = ?1", params![name])?;
        }
    }
    Ok(())
}

/// Handle to the background index builder; dropping it stops the task.
pub struct Indexer {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Indexer {
    /// Starts the builder over `db` with a ceiling of `max` index definitions; it makes one
    /// pass at once (declarations made before a restart, a changed ceiling).
    pub fn spawn(db: Db, max: usize) -> Indexer {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(db, wake.clone(), max));
        Indexer { wake, task }
    }

    /// Asks for a pass soon (after declarations changed). Never waits: a wake during a pass
    /// is kept and causes one more pass.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(db: Db, wake: Arc<Notify>, max: usize) {
    loop {
        if let Err(e) = pass(&db, max).await {
            tracing::warn!(%e, "index pass failed");
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// One pass: plan on a reader, then one writer transaction per step. A failed step is
/// logged and skipped (the next pass retries it), so one bad index never blocks the rest.
async fn pass(db: &Db, max: usize) -> AppResult<()> {
    let steps = db
        .read(move |tx| {
            let built = built(tx)?;
            Ok(plan(&wanted(tx, max, &built)?, &built))
        })
        .await?;
    for step in steps {
        let label = format!("{step:?}");
        let started = std::time::Instant::now();
        if let Err(e) = db.write(move |tx| apply(tx, &step)).await {
            tracing::warn!(%e, step = %label, "index step failed");
        }
        // Rest as long as the step held the writer: `CREATE INDEX` reads the whole shared
        // table, so a user who keeps changing declarations can keep the builder busy, but
        // never for more than about half of the writer's time.
        tokio::time::sleep(started.elapsed().min(MAX_REST)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str) -> Wanted {
        Wanted {
            name: name.into(),
            sql: String::new(),
            plugin_id: "p".into(),
            collection: "c".into(),
        }
    }

    #[test]
    fn plans_drops_before_creates_and_nothing_when_in_step() {
        let built: BTreeSet<String> = ["a", "old"].into_iter().map(String::from).collect();
        let steps = plan(&[w("a"), w("b")], &built);
        assert_eq!(steps, vec![Step::Drop("old".into()), Step::Create(w("b"))]);
        let done: BTreeSet<String> = ["a", "b"].into_iter().map(String::from).collect();
        assert!(plan(&[w("a"), w("b")], &done).is_empty());
    }

    #[test]
    fn ranks_by_users_then_keeps_what_is_built() {
        let built: BTreeSet<String> = ["z-built"].into_iter().map(String::from).collect();
        let candidates = vec![(w("a-new"), 1), (w("z-built"), 1), (w("m-shared"), 3)];
        let names = |v: Vec<Wanted>| v.into_iter().map(|w| w.name).collect::<Vec<_>>();
        // A newcomer declared as often does not evict the built one; more users do.
        assert_eq!(
            names(rank(candidates.clone(), &built, 2)),
            ["m-shared", "z-built"]
        );
        assert_eq!(
            names(rank(candidates.clone(), &built, 3)),
            ["m-shared", "z-built", "a-new"]
        );
        let none = BTreeSet::new();
        assert_eq!(names(rank(candidates, &none, 2)), ["m-shared", "a-new"]);
    }
}
