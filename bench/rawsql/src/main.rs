//! `monodit-bench-rawsql DB USER PLUGIN COLLECTION BUCKETS QUERY_JSON MANIFEST_JSON`
//!
//! Runs, for a bounded time each, (1) the server's batch-meta statement for BUCKETS document
//! buckets `meta-0..` in one read transaction, and (2) the planner's SQL for QUERY_JSON on
//! the collection, reading the same columns the server reads. Prints one JSON object with
//! operations per second and latency percentiles (ms). Read-only: the server keeps running.

use monodit_core::manifest::Manifest;
use monodit_core::query::{self, QueryOptions, SqlValue};
use rusqlite::types::Value as DbValue;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(3);
const MAX_OPS: usize = 1_000_000;

fn to_db(v: &SqlValue) -> DbValue {
    match v {
        SqlValue::Null => DbValue::Null,
        SqlValue::Integer(i) => DbValue::Integer(*i),
        SqlValue::Real(f) => DbValue::Real(*f),
        SqlValue::Text(s) => DbValue::Text(s.clone()),
        SqlValue::Bool(b) => DbValue::Integer(i64::from(*b)),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `op` repeatedly for [`RUN_FOR`]; returns `{perS, latency: {n, median, p99}}`.
fn measure(mut op: impl FnMut() -> rusqlite::Result<usize>) -> rusqlite::Result<(Value, usize)> {
    let mut lat = Vec::new();
    let mut last = 0;
    let start = Instant::now();
    while start.elapsed() < RUN_FOR && lat.len() < MAX_OPS {
        let t = Instant::now();
        last = op()?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let secs = start.elapsed().as_secs_f64();
    let n = lat.len();
    lat.sort_by(|a, b| a.total_cmp(b));
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok((
        json!({
            "perS": (n as f64 / secs).round(),
            "latency": {"n": n, "median": r(percentile(&lat, 50.0)), "p99": r(percentile(&lat, 99.0))},
        }),
        last,
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: {} DB USER PLUGIN COLLECTION BUCKETS QUERY_JSON MANIFEST_JSON", args[0]);
        std::process::exit(2);
    }
    if let Err(e) = run(&args[1..]) {
        eprintln!("rawsql: {e}");
        std::process::exit(1);
    }
}

fn run(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (db, user, plugin, collection) = (&a[0], &a[1], &a[2], &a[3]);
    let buckets: usize = a[4].parse()?;
    let query_json: Value = serde_json::from_str(&a[5])?;
    let manifest = Manifest::parse(&serde_json::from_str(&a[6])?)?;
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ids: Vec<String> = (0..buckets).map(|i| format!("meta-{i}")).collect();

    // (1) Batch meta: the server's statement, once per bucket, in one read transaction.
    let (meta, found) = measure(|| {
        let tx = conn.unchecked_transaction()?;
        let mut found = 0;
        {
            let mut stmt = tx.prepare_cached(
                "SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
            )?;
            for id in &ids {
                let row = stmt
                    .query_row(params![user, id], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                    .optional()?;
                found += usize::from(row.is_some());
            }
        }
        tx.commit()?;
        Ok(found)
    })?;

    // (2) The planner's SQL for the query, reading id, data and sort key as the server does.
    let decl = manifest.collection(collection)?;
    let vq = query::validate(&QueryOptions::from_json(&query_json)?, decl)?;
    let plan = query::plan_query(plugin, collection, user, &vq, b"bench")?;
    let params: Vec<DbValue> = plan.params.iter().map(to_db).collect();
    let (q, rows) = measure(|| {
        let tx = conn.unchecked_transaction()?;
        let n = {
            let mut stmt = tx.prepare_cached(&plan.sql)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, DbValue>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.len()
        };
        tx.commit()?;
        Ok(n)
    })?;
    println!(
        "{}",
        json!({"meta": meta, "metaFound": found, "query": q, "queryRows": rows, "sql": plan.sql})
    );
    Ok(())
}
