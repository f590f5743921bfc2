//! What one user may create (core `limits`): instance size and count, plugin ids with
//! declarations, index declarations, and the physical indexes the server builds for them.

use crate::support::*;
use monodit_core::limits::{MAX_DECLARED_PLUGINS_PER_USER, MAX_INDEX_DECLARATIONS_PER_USER};
use reqwest::Method;
use serde_json::{json, Value};

/// Indexes on `_plugin_storage` whose name is `LIKE` the pattern, as SQLite has them now.
pub(crate) fn index_count(s: &Srv, like: &str) -> i64 {
    s.sql()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = '_plugin_storage' AND name LIKE ?1",
            [like],
            |r| r.get(0),
        )
        .unwrap()
}

/// Waits (bounded: 20 s) until the background indexer has made exactly `n` indexes named
/// `LIKE` the pattern.
pub(crate) async fn wait_for_indexes(s: &Srv, like: &str, n: i64) {
    let mut seen = -1;
    for _ in 0..1000 {
        seen = index_count(s, like);
        if seen == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("expected {n} indexes {like:?}, the server has {seen}");
}

/// A manifest for plugin `id` with one collection `c` indexed on `fields`.
fn plugin_manifest(id: &str, fields: &[&str]) -> Value {
    json!({"id": id, "storage": {"c": {"indexes": fields}}})
}

/// What the campaign sent: one plugin id with 32 collections × 16 indexes.
fn widest_manifest(id: &str) -> Value {
    let fields: Vec<String> = (0..16).map(|i| format!("f{i}")).collect();
    let storage: serde_json::Map<String, Value> = (0..32)
        .map(|c| (format!("c{c}"), json!({"indexes": fields})))
        .collect();
    json!({"id": id, "storage": storage})
}

/// Fills one user's limits exactly: MAX_DECLARED_PLUGINS_PER_USER plugin ids ("<prefix>-<i>")
/// with MAX_INDEX_DECLARATIONS_PER_USER index declarations between them, then checks that
/// one more plugin id and one more index are both LIMIT_EXCEEDED and change nothing.
async fn fill_declaration_limits(s: &Srv, t: &str, prefix: &str) {
    let per = MAX_INDEX_DECLARATIONS_PER_USER / MAX_DECLARED_PLUGINS_PER_USER;
    assert_eq!(
        per * MAX_DECLARED_PLUGINS_PER_USER,
        MAX_INDEX_DECLARATIONS_PER_USER
    );
    let fields: Vec<String> = (0..per).map(|i| format!("f{i}")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    for i in 0..MAX_DECLARED_PLUGINS_PER_USER {
        let id = format!("{prefix}-{i}");
        s.register(t, &id, plugin_manifest(&id, &fields), json!({}))
            .await
            .ok();
    }
    // One plugin id more, even without indexes.
    let extra = format!("{prefix}-extra");
    let r = s
        .register(t, &extra, plugin_manifest(&extra, &[]), json!({}))
        .await;
    r.expect_err("LIMIT_EXCEEDED");
    assert_eq!(r.body["detail"]["max"], MAX_DECLARED_PLUGINS_PER_USER);
    // One index more, on a plugin id it already has (a second instance adding to the union).
    let first = format!("{prefix}-0");
    let mut more = fields.clone();
    more.push("one_more");
    let r = s
        .register(
            t,
            &format!("{first}-b"),
            plugin_manifest(&first, &more),
            json!({}),
        )
        .await;
    r.expect_err("LIMIT_EXCEEDED");
    assert_eq!(r.body["detail"]["max"], MAX_INDEX_DECLARATIONS_PER_USER);
    // The campaign's manifest is refused outright, on a new id or an old one.
    s.register(t, "wide", widest_manifest("wide"), json!({}))
        .await
        .expect_err("LIMIT_EXCEEDED");
    s.register(t, &first, widest_manifest(&first), json!({}))
        .await
        .expect_err("LIMIT_EXCEEDED");
    // Nothing refused was stored: the user still holds exactly its plugin ids.
    let listed = s.get("/v1/instances", t).await.ok().clone();
    assert_eq!(
        listed.as_array().unwrap().len(),
        MAX_DECLARED_PLUGINS_PER_USER
    );
    let plugins = s.get("/v1/plugins", t).await.ok().clone();
    assert_eq!(
        plugins.as_array().unwrap().len(),
        MAX_DECLARED_PLUGINS_PER_USER
    );
    // Re-registering what it has (at the limit, not past it) still works.
    s.register(t, &first, plugin_manifest(&first, &fields), json!({}))
        .await
        .ok();
}

#[tokio::test]
async fn a_hostile_user_cannot_slow_other_users_collection_writes() {
    let s = Srv::start_native().await;
    let hostile_pro = s.pro().await;
    let hostile_free = s.user("free", 0).await;
    fill_declaration_limits(&s, &hostile_free, "free").await;
    fill_declaration_limits(&s, &hostile_pro, "pro").await;
    // Another user's plugin; named to sort after every hostile index, so that once it is
    // built the builder has gone past anything it would have built for them.
    let victim = s.pro().await;
    s.register(
        &victim,
        "zz-forms",
        plugin_manifest("zz-forms", &["formId", "status"]),
        json!({}),
    )
    .await
    .ok();
    wait_for_indexes(&s, "idx_zz_forms_%", 2).await;
    // The Pro user's declarations are built (once each), the Free user's never.
    assert_eq!(index_count(&s, "idx_free_%"), 0);
    assert_eq!(
        index_count(&s, "idx_pro_%"),
        MAX_INDEX_DECLARATIONS_PER_USER as i64
    );
    assert_eq!(
        index_count(&s, "idx_%"),
        MAX_INDEX_DECLARATIONS_PER_USER as i64 + 2
    );
    // The victim's writes and queries work, and see only its own rows.
    for i in 0..20 {
        s.coll(
            &victim,
            "zz-forms",
            "c",
            "put",
            json!({"id": format!("s{i}"), "data": {"formId": format!("f{}", i % 2), "status": "new"}}),
        )
        .await
        .ok();
    }
    let page = s
        .coll(
            &victim,
            "zz-forms",
            "c",
            "query",
            json!({"where": {"formId": "f1"}}),
        )
        .await
        .ok()
        .clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    // The Free user's storage stays gated off, declarations or not.
    s.coll(
        &hostile_free,
        "free-0",
        "c",
        "put",
        json!({"id": "x", "data": {}}),
    )
    .await
    .expect_err("PLAN_REQUIRED");
    s.stop().await;
}

#[tokio::test]
async fn index_definitions_are_shared_by_every_user_of_a_plugin() {
    let s = Srv::start_native().await;
    let users = [s.pro().await, s.pro().await, s.pro().await];
    for t in &users {
        s.register(t, "forms-1", forms_manifest(), json!({}))
            .await
            .ok();
    }
    // forms declares 6 indexes; three users of it make 6 indexes, not 18.
    wait_for_indexes(&s, "idx_forms_%", 6).await;
    let stored: i64 = s
        .sql()
        .query_row("SELECT COUNT(*) FROM plugin_indexes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 6);
    // They stay while any user declares them, and go when the last one stops.
    for t in &users[..2] {
        s.call(Method::DELETE, "/v1/instances/forms-1", Some(t), None)
            .await
            .ok();
    }
    s.register(
        &users[2],
        "marker",
        plugin_manifest("zz-marker", &["a"]),
        json!({}),
    )
    .await
    .ok();
    wait_for_indexes(&s, "idx_zz_marker_%", 1).await;
    assert_eq!(index_count(&s, "idx_forms_%"), 6);
    s.call(
        Method::DELETE,
        "/v1/instances/forms-1",
        Some(&users[2]),
        None,
    )
    .await
    .ok();
    wait_for_indexes(&s, "idx_forms_%", 0).await;
    s.stop().await;
}

#[tokio::test]
async fn the_server_builds_at_most_its_ceiling_of_index_definitions_and_queries_stay_right() {
    let s = Srv::start_with(|c| c.max_index_definitions = 3).await;
    let (a, b) = (s.pro().await, s.pro().await);
    // "shared" is declared by two users, "solo" by one: the shared definitions rank first.
    s.register(&a, "w", plugin_manifest("shared", &["x", "y"]), json!({}))
        .await
        .ok();
    s.register(&b, "w", plugin_manifest("shared", &["x", "y"]), json!({}))
        .await
        .ok();
    s.register(&b, "v", plugin_manifest("solo", &["p", "q"]), json!({}))
        .await
        .ok();
    wait_for_indexes(&s, "idx_shared_%", 2).await;
    wait_for_indexes(&s, "idx_%", 3).await;
    assert_eq!(index_count(&s, "idx_solo_%"), 1);
    // A query on a field whose index the ceiling cut answers exactly as an indexed one would.
    let items: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("i{i:02}"), "data": {"p": i % 3, "q": i}}))
        .collect();
    s.coll(&b, "solo", "c", "putMany", json!({"items": items}))
        .await
        .ok();
    for field in ["p", "q"] {
        let page = s
            .coll(
                &b,
                "solo",
                "c",
                "query",
                json!({"where": {field: 1}, "limit": 100}),
            )
            .await
            .ok()
            .clone();
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..30)
            .filter(|i| if field == "p" { i % 3 == 1 } else { *i == 1 })
            .map(|i| format!("i{i:02}"))
            .collect();
        assert_eq!(ids, want, "{field}");
    }
    s.stop().await;
}

#[tokio::test]
async fn removed_instances_leave_no_pins_behind_unless_their_plugin_has_data() {
    let s = Srv::start_native().await;
    let free = s.user("free", 0).await;
    let pins = |s: &Srv| -> i64 {
        s.sql()
            .query_row("SELECT COUNT(*) FROM plugin_pins", [], |r| r.get(0))
            .unwrap()
    };
    // Register and remove under ever new plugin ids: nothing accumulates.
    for i in 0..20 {
        let id = format!("p-{i}");
        let body = json!({"kind": "widget", "manifest": {"id": id}, "config": {}, "source": "https://w.example/a.html"});
        let path = format!("/v1/instances/w-{i}");
        s.call(Method::PUT, &path, Some(&free), Some(body))
            .await
            .ok();
        s.call(Method::DELETE, &path, Some(&free), None).await.ok();
    }
    // An instance moving to another plugin id releases the old one too.
    for id in ["moved-a", "moved-b"] {
        let body = json!({"kind": "widget", "manifest": {"id": id}, "config": {}, "source": "https://w.example/a.html"});
        s.call(Method::PUT, "/v1/instances/mover", Some(&free), Some(body))
            .await
            .ok();
    }
    assert_eq!(pins(&s), 1, "only moved-b, still held");
    assert_eq!(
        s.get("/v1/plugins", &free)
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_user_already_past_a_limit_keeps_what_it_has_but_cannot_grow() {
    // As after an upgrade that lowered a limit: declarations made before it, past it today.
    let s = Srv::start_native().await;
    let t = s.pro().await;
    let me = s.get("/v1/me", &t).await.ok().clone();
    let uid = me["userId"].as_str().unwrap();
    let over = MAX_DECLARED_PLUGINS_PER_USER + 1;
    for i in 0..over {
        s.sql()
            .execute(
                "INSERT INTO plugin_collections (user_id, plugin_id, collection, indexes) VALUES (?1, ?2, 'c', '[\"a\"]')",
                rusqlite::params![uid, format!("old-{i}")],
            )
            .unwrap();
    }
    // Re-declaring one it has (same size) and mounting widgets without collections work.
    s.register(&t, "old-0", plugin_manifest("old-0", &["a"]), json!({}))
        .await
        .ok();
    s.register(&t, "notes-1", notes_manifest(), json!({}))
        .await
        .ok();
    // Shrinking works; growing does not, until it is back under the limit.
    s.register(&t, "old-0", plugin_manifest("old-0", &[]), json!({}))
        .await
        .ok();
    s.register(&t, "new", plugin_manifest("new", &[]), json!({}))
        .await
        .expect_err("LIMIT_EXCEEDED");
    s.register(
        &t,
        "old-0",
        plugin_manifest("old-0", &["a", "b"]),
        json!({}),
    )
    .await
    .ok();
    s.call(Method::DELETE, "/v1/instances/old-0", Some(&t), None)
        .await
        .ok();
    // old-0 is no longer declared: 32 plugin ids, at the limit, so still no new one.
    s.register(&t, "new", plugin_manifest("new", &[]), json!({}))
        .await
        .expect_err("LIMIT_EXCEEDED");
    // Deleting a plugin no instance holds drops its declaration too: now one fits.
    s.call(Method::DELETE, "/v1/plugins/old-1", Some(&t), None)
        .await
        .ok();
    s.register(&t, "new", plugin_manifest("new", &[]), json!({}))
        .await
        .ok();
    s.stop().await;
}
