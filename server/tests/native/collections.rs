//! Plugin collections (seed 003) over HTTP.

use crate::limits::{index_count, wait_for_indexes};
use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn with_forms() -> (Srv, String) {
    let s = Srv::start_native().await;
    let t = s.pro().await;
    s.register(&t, "forms-1", forms_manifest(), json!({}))
        .await
        .ok();
    // Indexes are built in the background; the planner tests below need them.
    wait_for_indexes(&s, "idx_forms_%", 6).await;
    (s, t)
}

fn sub(form: &str, status: &str, created: &str) -> Value {
    json!({"formId": form, "email": "user@example.com", "status": status, "createdAt": created})
}

#[tokio::test]
async fn crud_and_batches_follow_the_seed() {
    let (s, t) = with_forms().await;
    let c = |op: &'static str, body: Value| s.coll(&t, "forms", "submissions", op, body);
    assert_eq!(
        c("get", json!({"id": "sub_123"})).await.ok()["item"],
        Value::Null
    );
    c(
        "put",
        json!({"id": "sub_123", "data": sub("contact", "pending", "2024-01-01")}),
    )
    .await
    .ok();
    assert_eq!(
        c("get", json!({"id": "sub_123"})).await.ok()["item"]["formId"],
        "contact"
    );
    assert_eq!(
        c("exists", json!({"id": "sub_123"})).await.ok()["exists"],
        true
    );
    // The op may also travel in the body, as api::CollectionOp serialises it.
    assert_eq!(
        c("exists", json!({"op": "exists", "id": "zzz"})).await.ok()["exists"],
        false
    );
    c("exists", json!({"op": "get", "id": "zzz"}))
        .await
        .expect_err("INVALID_ARGUMENT");
    assert_eq!(
        c("delete", json!({"id": "sub_123"})).await.ok()["deleted"],
        true
    );
    assert_eq!(
        c("delete", json!({"id": "sub_123"})).await.ok()["deleted"],
        false
    );

    c(
        "putMany",
        json!({"items": [
            {"id": "sub_1", "data": sub("contact", "new", "2024-01-02")},
            {"id": "sub_2", "data": sub("contact", "new", "2024-01-03")},
            {"id": "sub_3", "data": sub("other", "spam", "2024-01-04")}
        ]}),
    )
    .await
    .ok();
    let many = c("getMany", json!({"ids": ["sub_1", "sub_2", "nope"]})).await;
    let items = many.ok()["items"].as_object().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items["sub_2"]["createdAt"], "2024-01-03");
    assert_eq!(c("count", json!({})).await.ok()["count"], 3);
    assert_eq!(
        c("count", json!({"where": {"status": "new"}})).await.ok()["count"],
        2
    );
    assert_eq!(
        c("deleteMany", json!({"ids": ["sub_1", "sub_2", "nope"]}))
            .await
            .ok()["deleted"],
        2
    );
    assert_eq!(c("count", json!({})).await.ok()["count"], 1);
    assert_eq!(
        s.get("/v1/usage", &t).await.ok()["collectionBytes"],
        s.used(&t).await
    );
    s.stop().await;
}

#[tokio::test]
async fn query_filters_orders_and_drains_with_cursors() {
    let (s, t) = with_forms().await;
    let items: Vec<Value> = (0..25)
        .map(|i| {
            json!({"id": format!("s{i:02}"), "data": sub(if i % 2 == 0 { "contact" } else { "other" }, "pending", &format!("2024-01-{:02}", i + 1))})
        })
        .collect();
    s.coll(
        &t,
        "forms",
        "submissions",
        "putMany",
        json!({"items": items}),
    )
    .await
    .ok();

    let q = s
        .coll(&t, "forms", "submissions", "query", json!({"where": {"formId": "contact", "status": "pending"}, "orderBy": {"createdAt": "desc"}, "limit": 5}))
        .await;
    let page = q.ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert_eq!(page["items"][0]["id"], "s24");
    assert_eq!(page["items"][1]["id"], "s22");
    assert_eq!(page["hasMore"], true);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut body = json!({"orderBy": {"createdAt": "desc"}, "limit": 10});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let r = s.coll(&t, "forms", "submissions", "query", body).await;
        let page = r.ok();
        for it in page["items"].as_array().unwrap() {
            seen.push(it["id"].as_str().unwrap().to_string());
        }
        cursor = page["cursor"].as_str().map(str::to_string);
        assert_eq!(page["hasMore"], cursor.is_some());
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, each item once");
    s.stop().await;
}

#[tokio::test]
async fn undeclared_unindexed_and_removed_indexes_fail_clearly() {
    let (s, t) = with_forms().await;
    s.coll(&t, "forms", "nope", "get", json!({"id": "a"}))
        .await
        .expect_err("UNDECLARED_COLLECTION");
    s.coll(&t, "other-plugin", "submissions", "get", json!({"id": "a"}))
        .await
        .expect_err("UNDECLARED_COLLECTION");
    s.coll(
        &t,
        "forms",
        "submissions",
        "query",
        json!({"where": {"email": "x"}}),
    )
    .await
    .expect_err("NOT_INDEXED");
    // Seed: with only ["formId","createdAt"], a filter starting at createdAt needs its own index.
    s.coll(
        &t,
        "forms",
        "submissions",
        "query",
        json!({"where": {"createdAt": {"gte": "2024-01-01"}}}),
    )
    .await
    .ok();

    assert_eq!(index_count(&s, "idx_forms_%"), 6);
    // A plugin update drops "status" (and the composite led by status).
    let mut m = forms_manifest();
    m["storage"]["submissions"]["indexes"] =
        json!(["formId", "createdAt", ["formId", "createdAt"]]);
    s.register(&t, "forms-1", m, json!({})).await.ok();
    wait_for_indexes(&s, "idx_forms_%", 4).await;
    s.coll(
        &t,
        "forms",
        "submissions",
        "query",
        json!({"where": {"status": "pending"}}),
    )
    .await
    .expect_err("NOT_INDEXED");
    s.coll(
        &t,
        "forms",
        "submissions",
        "count",
        json!({"where": {"status": "pending"}}),
    )
    .await
    .expect_err("NOT_INDEXED");
    s.stop().await;
}

#[tokio::test]
async fn planned_queries_use_the_expression_indexes() {
    let (s, t) = with_forms().await;
    // Realistic, selective data and statistics (the server refreshes them with PRAGMA optimize;
    // a test cannot wait for that), as SQLite's planner picks indexes by cost.
    let items: Vec<Value> = (0..400)
        .map(|i| json!({"id": format!("s{i:03}"), "data": sub(&format!("f{}", i % 40), &format!("st{}", i % 7), &format!("2024-{i:03}"))}))
        .collect();
    s.coll(
        &t,
        "forms",
        "submissions",
        "putMany",
        json!({"items": items}),
    )
    .await
    .ok();
    let user_id = s.get("/v1/me", &t).await.ok()["userId"]
        .as_str()
        .unwrap()
        .to_string();
    s.sql().execute_batch("ANALYZE").unwrap();
    let decl = monodit_core::manifest::Manifest::parse(&forms_manifest()).unwrap();
    let decl = decl.collection("submissions").unwrap().clone();
    let shapes = [
        json!({"where": {"formId": "f3"}}),
        json!({"where": {"formId": "f3"}, "orderBy": {"createdAt": "desc"}}),
        json!({"orderBy": {"createdAt": "desc"}}),
        json!({"where": {"status": "st1", "formId": "f3"}}),
    ];
    let conn = s.sql();
    for shape in shapes {
        let opts: monodit_core::query::QueryOptions =
            serde_json::from_value(shape.clone()).unwrap();
        let vq = monodit_core::query::validate(&opts, &decl).unwrap();
        let plan = monodit_core::query::plan_query("forms", "submissions", &user_id, &vq, &[0; 32])
            .unwrap();
        let params: Vec<rusqlite::types::Value> = plan
            .params
            .iter()
            .map(|p| match p {
                monodit_core::query::SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
                monodit_core::query::SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
                monodit_core::query::SqlValue::Real(f) => rusqlite::types::Value::Real(*f),
                monodit_core::query::SqlValue::Bool(b) => {
                    rusqlite::types::Value::Integer(*b as i64)
                }
                monodit_core::query::SqlValue::Null => rusqlite::types::Value::Null,
            })
            .collect();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", plan.sql))
            .unwrap();
        let details: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let text = details.join(" | ");
        assert!(
            text.contains("USING INDEX idx_forms_submissions"),
            "{shape}: {text}"
        );
        assert!(!text.contains("SCAN _plugin_storage"), "{shape}: {text}");
    }
    s.stop().await;
}

#[tokio::test]
async fn hostile_queries_cursors_and_batches_get_coded_errors() {
    let (s, t) = with_forms().await;
    let q = |body: Value| s.coll(&t, "forms", "submissions", "query", body);
    q(json!({"where": {"x'); DROP TABLE users;--": 1}}))
        .await
        .expect_err("INVALID_ARGUMENT");
    q(json!({"where": {"formId": {"$ne": 1}}}))
        .await
        .expect_err("INVALID_ARGUMENT");
    q(json!({"orderBy": {"createdAt": "sideways"}}))
        .await
        .expect_err("INVALID_ARGUMENT");
    q(json!({"limit": 0})).await.expect_err("INVALID_ARGUMENT");
    q(json!({"limit": 1001}))
        .await
        .expect_err("INVALID_ARGUMENT");
    q(json!({"limit": "ten"}))
        .await
        .expect_err("INVALID_ARGUMENT");
    q(json!({"cursor": "AAAA"}))
        .await
        .expect_err("INVALID_CURSOR");

    for i in 0..3 {
        s.coll(
            &t,
            "forms",
            "submissions",
            "put",
            json!({"id": format!("i{i}"), "data": sub("contact", "new", "2024")}),
        )
        .await
        .ok();
    }
    let first = q(json!({"limit": 1, "orderBy": {"createdAt": "asc"}})).await;
    let cursor = first.ok()["cursor"].as_str().unwrap().to_string();
    let mut tampered = cursor.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    q(json!({"limit": 1, "orderBy": {"createdAt": "asc"}, "cursor": String::from_utf8(tampered).unwrap()}))
        .await
        .expect_err("INVALID_CURSOR");
    // A cursor from one query is not valid for another.
    q(json!({"limit": 1, "orderBy": {"createdAt": "desc"}, "cursor": cursor.clone()}))
        .await
        .expect_err("INVALID_CURSOR");
    // Nor for another user.
    let other = s.pro().await;
    s.register(&other, "f", forms_manifest(), json!({}))
        .await
        .ok();
    s.coll(
        &other,
        "forms",
        "submissions",
        "query",
        json!({"limit": 1, "orderBy": {"createdAt": "asc"}, "cursor": cursor}),
    )
    .await
    .expect_err("INVALID_CURSOR");
    assert_eq!(
        s.coll(&other, "forms", "submissions", "count", json!({}))
            .await
            .ok()["count"],
        0
    );

    let ids: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    s.coll(&t, "forms", "submissions", "getMany", json!({"ids": ids}))
        .await
        .expect_err("INVALID_ARGUMENT");
    s.coll(
        &t,
        "forms",
        "submissions",
        "put",
        json!({"id": "", "data": 1}),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.coll(
        &t,
        "forms",
        "submissions",
        "put",
        json!({"id": 5, "data": 1}),
    )
    .await
    .expect_err("INVALID_ARGUMENT");
    s.coll(&t, "forms", "submissions", "drop", json!({}))
        .await
        .expect_err("INVALID_ARGUMENT");
    s.coll(
        &t,
        "forms",
        "submissions",
        "put",
        json!({"id": "big", "data": "x".repeat(1024 * 1024 + 1)}),
    )
    .await
    .expect_err("PAYLOAD_TOO_LARGE");
    let users: i64 = s
        .sql()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(users >= 2, "tables intact");
    s.stop().await;
}

#[tokio::test]
async fn put_many_is_one_transaction_under_quota() {
    let (s, t) = with_forms().await;
    let hash = monodit_server::store::users::hash_token(&t);
    s.sql()
        .execute(
            "UPDATE users SET used_bytes = 5000000000 - 150 WHERE token_hash = ?1",
            [hash],
        )
        .unwrap();
    let items: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("q{i}"), "data": "x".repeat(40)}))
        .collect();
    s.coll(
        &t,
        "forms",
        "submissions",
        "putMany",
        json!({"items": items}),
    )
    .await
    .expect_err("QUOTA_EXCEEDED");
    assert_eq!(
        s.coll(&t, "forms", "submissions", "count", json!({}))
            .await
            .ok()["count"],
        0,
        "nothing written"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_manifest_claiming_a_plugin_id_can_add_but_never_drop_its_declaration() {
    let (s, t) = with_forms().await;
    s.coll(
        &t,
        "forms",
        "submissions",
        "put",
        json!({"id": "a", "data": {"status": "new"}}),
    )
    .await
    .ok();
    let status_query = json!({"where": {"status": "new"}});
    // Another page registers an instance that claims "forms" and declares nothing, then one
    // that declares a different index set: the real widget's collections and indexes stay.
    let bare = json!({"id": "forms"});
    s.register(&t, "rogue-1", bare, json!({})).await.ok();
    let mut other = forms_manifest();
    other["storage"] = json!({"submissions": {"indexes": ["email"]}});
    s.register(&t, "rogue-2", other, json!({})).await.ok();
    let found = s
        .coll(&t, "forms", "submissions", "query", status_query.clone())
        .await;
    assert_eq!(found.ok()["items"].as_array().unwrap().len(), 1);
    s.coll(&t, "forms", "forms", "exists", json!({"id": "x"}))
        .await
        .ok();
    // The union includes the claimed index too (it adds, never removes).
    s.coll(
        &t,
        "forms",
        "submissions",
        "count",
        json!({"where": {"email": "x"}}),
    )
    .await
    .ok();
    // Once the real instance is gone, only what the remaining ones declare stays.
    s.call(Method::DELETE, "/v1/instances/forms-1", Some(&t), None)
        .await
        .ok();
    s.coll(&t, "forms", "submissions", "query", status_query)
        .await
        .expect_err("NOT_INDEXED");
    s.coll(&t, "forms", "forms", "exists", json!({"id": "x"}))
        .await
        .expect_err("UNDECLARED_COLLECTION");
    // An instance moving to another plugin id takes its declaration with it.
    s.call(Method::DELETE, "/v1/instances/rogue-2", Some(&t), None)
        .await
        .ok();
    s.register(&t, "forms-2", forms_manifest(), json!({}))
        .await
        .ok();
    s.register(&t, "forms-2", json!({"id": "not-forms"}), json!({}))
        .await
        .ok();
    s.coll(&t, "forms", "submissions", "count", json!({}))
        .await
        .expect_err("UNDECLARED_COLLECTION");
    s.stop().await;
}
