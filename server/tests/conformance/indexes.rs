//! Declared collection indexes are built and used: `POST /v1/dev/explain/...` shows the
//! `EXPLAIN QUERY PLAN` of a query as the backend plans it, which must search one of the
//! partial expression indexes core's `index_ddl` defines for the declaration.
//!
//! The shapes checked are sorted ones: without the index SQLite reads the primary key and
//! sorts in a temporary B-tree, with it the index gives the order, and SQLite prefers that
//! with or without planner statistics. (Whether an equality-only filter picks the index over
//! the primary key depends on statistics, `ANALYZE`, which a fresh database lacks.)

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A plugin id no other test (or earlier run on a shared database) declares, so only this
/// test's registration can have created its indexes.
fn fresh_plugin_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ix-{nanos:x}-{:x}", std::process::id())
}

async fn explain(s: &Srv, t: &str, plugin: &str, query: &Value) -> Vec<String> {
    let r = s
        .call(
            Method::POST,
            &format!("/v1/dev/explain/{plugin}/subs"),
            Some(t),
            Some(query.clone()),
        )
        .await;
    r.ok()["plan"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan in {:?}", r.ok()))
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn declared_indexes_are_built_and_searched() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let plugin = fresh_plugin_id();
    let manifest = json!({
        "id": plugin,
        "storage": {"subs": {"indexes": ["formId", ["status", "createdAt"]]}}
    });
    s.register(&t, "ix-1", manifest, json!({})).await.ok();
    // Some rows, so the plan is about real data (the planner must still pick the index).
    let items: Vec<Value> = (0..20)
        .map(|i| {
            json!({"id": format!("s{i}"), "data": {"formId": format!("f{}", i % 4),
                "status": if i % 2 == 0 { "open" } else { "done" }, "createdAt": i}})
        })
        .collect();
    s.coll(&t, &plugin, "subs", "putMany", json!({"items": items}))
        .await
        .ok();
    // The index name core gives the declaration: idx_<plugin with _ for ->_<collection>_...
    let prefix = format!("USING INDEX idx_{}_subs_", plugin.replace('-', "_"));
    let shapes = [
        (json!({"orderBy": {"formId": "asc"}}), "formId", 20),
        (
            json!({"where": {"status": "open"}, "orderBy": {"createdAt": "desc"}}),
            "status_createdAt",
            10,
        ),
    ];
    for (query, fields, n) in shapes {
        let want = format!("{prefix}{fields}_");
        // A backend may build indexes in the background (the native server does): wait a
        // bounded while for the plan to use it.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut plan = explain(&s, &t, &plugin, &query).await;
        while !plan.iter().any(|d| d.contains(&want)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            plan = explain(&s, &t, &plugin, &query).await;
        }
        let text = plan.join(" | ");
        assert!(text.contains(&want), "{query}: {text}");
        assert!(!text.contains("SCAN _plugin_storage"), "{query}: {text}");
        // ... and the query it explains answers (the index serves real queries).
        let page = s.coll(&t, &plugin, "subs", "query", query.clone()).await;
        assert_eq!(page.ok()["items"].as_array().unwrap().len(), n, "{query}");
    }
    // An undeclared collection is refused as the query op refuses it.
    s.call(
        Method::POST,
        &format!("/v1/dev/explain/{plugin}/nope"),
        Some(&t),
        Some(json!({})),
    )
    .await
    .expect_err("UNDECLARED_COLLECTION");
    s.stop().await;
}
