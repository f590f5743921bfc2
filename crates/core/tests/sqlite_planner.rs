//! The planner's SQL run against a real in-memory SQLite (rusqlite, bundled) with the real
//! expression indexes from `index_ddl`: index use per `EXPLAIN QUERY PLAN`, exact typed
//! filters, and cursor draining that returns every item exactly once, in order.

use monodit_core::manifest::Manifest;
use monodit_core::query::{
    manifest_index_ddl, plan_count, plan_query, validate, validate_where, PlanRow, QueryOptions,
    SqlValue, ValidatedQuery, CREATE_TABLE_SQL, MAX_PAGE_BYTES,
};
use monodit_core::ErrorCode;
use rusqlite::types::{Value as SqlV, ValueRef};
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Value};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const USER: &str = "user-1";

fn forms_manifest() -> Manifest {
    Manifest::parse(&json!({
        "slug": "forms",
        "storage": {
            "submissions": {
                "indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]
            },
            "forms": { "indexes": ["slug"] }
        }
    }))
    .expect("the forms manifest is valid")
}

fn db(m: &Manifest) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(CREATE_TABLE_SQL).unwrap();
    for (_, sql) in manifest_index_ddl(m).unwrap() {
        conn.execute_batch(&sql).unwrap();
    }
    conn
}

fn put(conn: &Connection, user: &str, collection: &str, id: &str, data: Value) {
    conn.execute(
        "INSERT OR REPLACE INTO _plugin_storage (user_id, plugin_id, collection, id, data) VALUES (?1, 'forms', ?2, ?3, ?4)",
        rusqlite::params![user, collection, id, data.to_string()],
    )
    .unwrap();
}

fn bind(params: &[SqlValue]) -> Vec<SqlV> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Null => SqlV::Null,
            SqlValue::Integer(i) => SqlV::Integer(*i),
            SqlValue::Real(f) => SqlV::Real(*f),
            SqlValue::Text(t) => SqlV::Text(t.clone()),
            SqlValue::Bool(b) => SqlV::Integer(i64::from(*b)),
        })
        .collect()
}

fn read(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8(t.to_vec()).unwrap()),
        ValueRef::Blob(_) => panic!("no blobs"),
    }
}

fn run(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<PlanRow> {
    run_page(conn, sql, params).0
}

/// The rows before the byte cap, and whether it cut the page (a NULL `data` came).
fn run_page(conn: &Connection, sql: &str, params: &[SqlValue]) -> (Vec<PlanRow>, bool) {
    let mut stmt = conn.prepare(sql).unwrap();
    let mut found = stmt.query(params_from_iter(bind(params))).unwrap();
    let mut rows = Vec::new();
    while let Some(r) = found.next().unwrap() {
        let Some(data) = r.get::<_, Option<String>>(1).unwrap() else {
            return (rows, true);
        };
        rows.push(PlanRow {
            id: r.get(0).unwrap(),
            data: serde_json::from_str(&data).unwrap(),
            sort_key: read(r.get_ref(2).unwrap()),
        });
    }
    (rows, false)
}

fn count(conn: &Connection, q: Value) -> i64 {
    let m = forms_manifest();
    let where_ = serde_json::from_value(q).unwrap();
    let filters = validate_where(Some(&where_), m.collection("submissions").unwrap()).unwrap();
    let stmt = plan_count("forms", "submissions", USER, &filters).unwrap();
    conn.query_row(&stmt.sql, params_from_iter(bind(&stmt.params)), |r| {
        r.get(0)
    })
    .unwrap()
}

fn explain(conn: &Connection, sql: &str, params: &[SqlValue]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(params_from_iter(bind(params)), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join(" | ")
}

fn vq(q: Value) -> ValidatedQuery {
    let m = forms_manifest();
    let opts: QueryOptions = serde_json::from_value(q).unwrap();
    validate(&opts, m.collection("submissions").unwrap()).unwrap()
}

fn seeded() -> Connection {
    seeded_with(true)
}

/// 300 submissions for USER and 300 for another user; `analyze` gathers planner statistics.
fn seeded_with(analyze: bool) -> Connection {
    let m = forms_manifest();
    let conn = db(&m);
    for i in 0..300 {
        let form = ["contact", "survey", "order"][i % 3];
        let status = ["pending", "approved", "spam"][i % 4 % 3];
        put(
            &conn,
            USER,
            "submissions",
            &format!("sub_{i:03}"),
            json!({"formId": form, "status": status, "createdAt": format!("2024-01-{:02}", 1 + i % 28), "n": i}),
        );
        // Another user's rows must never show up.
        put(
            &conn,
            "user-2",
            "submissions",
            &format!("sub_{i:03}"),
            json!({"formId": form, "status": status}),
        );
    }
    if analyze {
        conn.execute_batch("ANALYZE").unwrap();
    }
    conn
}

/// Every query shape the index rules (`query`'s module doc) say an index serves does use one of
/// ours, with no full scan.
fn assert_uses_index(conn: &Connection, q: Value, want_index: &str, sorted_by_index: bool) {
    let plan = plan_query("forms", "submissions", USER, &vq(q.clone()), SECRET).unwrap();
    let eqp = explain(conn, &plan.sql, &plan.params);
    assert!(
        eqp.contains(want_index),
        "{q}: expected {want_index} in plan: {eqp}"
    );
    assert!(
        !eqp.contains("SCAN _plugin_storage"),
        "{q}: full scan: {eqp}"
    );
    if sorted_by_index {
        // The rows read from the table come in index order; only the page wrapper (the byte
        // cap's running sum over at most limit + 1 rows) may sort, reading its subqueries.
        let mut reading = "";
        for step in eqp.split(" | ") {
            if step.starts_with("SCAN") || step.starts_with("SEARCH") {
                reading = step;
            }
            assert!(
                !step.contains("TEMP B-TREE") || reading.starts_with("SCAN (subquery"),
                "{q}: index should deliver the order: {eqp}"
            );
        }
    }
}

#[test]
fn seed_index_table_rows_use_indexes_in_sqlite() {
    let conn = seeded();
    // Filter by formId → "formId".
    assert_uses_index(
        &conn,
        json!({"where": {"formId": "contact"}}),
        "idx_forms_submissions_formId",
        true,
    );
    // Filter by formId, order by createdAt → ["formId","createdAt"].
    assert_uses_index(
        &conn,
        json!({"where": {"formId": "contact"}, "orderBy": {"createdAt": "desc"}, "limit": 20}),
        "idx_forms_submissions_formId_createdAt",
        true,
    );
    // Order by createdAt only → "createdAt".
    assert_uses_index(
        &conn,
        json!({"orderBy": {"createdAt": "desc"}}),
        "idx_forms_submissions_createdAt",
        true,
    );
    // Filter by status and formId → separate indexes; SQLite picks one of them.
    assert_uses_index(
        &conn,
        json!({"where": {"status": "pending", "formId": "contact"}}),
        "USING INDEX idx_forms_submissions_",
        false,
    );
}

#[test]
fn operators_use_indexes_in_sqlite() {
    // Selective values and statistics, so the cost model has a reason to prefer the expression
    // index over walking the user's rows in id order (what unordered pages are sorted by).
    let m = forms_manifest();
    let conn = db(&m);
    for i in 0..500 {
        put(
            &conn,
            USER,
            "submissions",
            &format!("sub_{i:03}"),
            json!({"formId": format!("f{i}"), "status": format!("s{}", i % 50), "createdAt": format!("2024-{:03}", i)}),
        );
    }
    conn.execute_batch("ANALYZE").unwrap();
    for q in [
        json!({"where": {"createdAt": {"gte": "2024-100"}}, "orderBy": {"createdAt": "asc"}}),
        json!({"where": {"createdAt": {"gt": "2024-100", "lt": "2024-120"}}}),
        json!({"where": {"createdAt": {"startsWith": "2024-01"}}}),
        json!({"where": {"formId": {"in": ["f1", "f7"]}}}),
        json!({"where": {"status": "s3"}, "orderBy": {"createdAt": "desc"}}),
        json!({"where": {"status": {"in": ["s1", "s2"]}}, "orderBy": {"createdAt": "asc"}}),
    ] {
        assert_uses_index(&conn, q, "USING INDEX idx_forms_submissions_", false);
    }
}

#[test]
fn cursor_pages_keep_using_the_index() {
    let conn = seeded();
    for dir in ["asc", "desc"] {
        let q = json!({"orderBy": {"createdAt": dir}, "limit": 10});
        let first = plan_query("forms", "submissions", USER, &vq(q.clone()), SECRET).unwrap();
        let page = first.finish(run(&conn, &first.sql, &first.params)).unwrap();
        let mut next = q.clone();
        next["cursor"] = json!(page.cursor.unwrap());
        let plan = plan_query("forms", "submissions", USER, &vq(next), SECRET).unwrap();
        let eqp = explain(&conn, &plan.sql, &plan.params);
        assert!(
            eqp.contains("idx_forms_submissions_createdAt"),
            "{dir}: {eqp}"
        );
        assert!(!eqp.contains("SCAN _plugin_storage"), "{dir}: {eqp}");
    }
}

fn drain(conn: &Connection, q: Value, between_pages: &mut dyn FnMut(usize)) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = q.clone();
        if let Some(c) = &cursor {
            q["cursor"] = json!(c);
        }
        let plan = plan_query("forms", "submissions", USER, &vq(q), SECRET).unwrap();
        let page = plan.finish(run(conn, &plan.sql, &plan.params)).unwrap();
        assert!(page.items.len() <= plan.limit as usize);
        assert_eq!(page.has_more, page.cursor.is_some());
        all.extend(page.items.into_iter().map(|i| i.id));
        pages += 1;
        assert!(pages < 10_000, "drain loop does not terminate");
        between_pages(pages);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    all
}

fn reference(conn: &Connection, field: Option<&str>, dir: &str) -> Vec<String> {
    let order = match field {
        Some(f) => format!("json_extract(data, '$.{f}') {dir}, id {dir}"),
        None => "id ASC".into(),
    };
    let sql = format!(
        "SELECT id FROM _plugin_storage WHERE user_id = ?1 AND plugin_id = 'forms' AND collection = 'submissions' ORDER BY {order}"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt.query_map([USER], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Mixed types, ties, nulls and missing fields: the drain equals SQLite's own full ordering.
#[test]
fn drain_returns_every_item_once_in_order_with_ties_and_mixed_types() {
    let m = forms_manifest();
    let conn = db(&m);
    let keys = [
        json!("2024-01-01"),
        json!("2024-01-01"),
        json!("2024-01-02"),
        json!(5),
        json!(5.0),
        json!(-3),
        json!(true),
        json!(false),
        json!(null),
        json!({"a": 1}),
        json!([1, 2]),
        json!(""),
        json!("é"),
        json!(18446744073709551615u64),
        json!(1e300),
    ];
    for i in 0..120 {
        let mut data = json!({"formId": "contact"});
        if i % 16 != 15 {
            data["createdAt"] = keys[i % keys.len()].clone();
        }
        put(
            &conn,
            USER,
            "submissions",
            &format!("s{:03}", (i * 37) % 120),
            data,
        );
    }
    for limit in [1, 2, 7, 50, 1000] {
        for dir in ["asc", "desc"] {
            let got = drain(
                &conn,
                json!({"orderBy": {"createdAt": dir}, "limit": limit}),
                &mut |_| {},
            );
            assert_eq!(
                got,
                reference(&conn, Some("createdAt"), dir),
                "limit {limit} {dir}"
            );
        }
        let got = drain(&conn, json!({"limit": limit}), &mut |_| {});
        assert_eq!(
            got,
            reference(&conn, None, "asc"),
            "unordered, limit {limit}"
        );
    }
}

/// A drain loop (query with the returned cursor until there is none; `orderBy createdAt desc,
/// limit 100`) while other writers insert and delete between pages: items present throughout
/// come exactly once, in order.
#[test]
fn drain_with_concurrent_inserts_and_deletes() {
    let conn = seeded();
    let before = reference(&conn, Some("createdAt"), "desc");
    let mut added = 0;
    let mut deleted: Vec<String> = Vec::new();
    let got = drain(
        &conn,
        json!({"orderBy": {"createdAt": "desc"}, "limit": 7}),
        &mut |page| {
            // New items on both sides of the cursor, and a deletion of an item not yet seen.
            put(
                &conn,
                USER,
                "submissions",
                &format!("new_{page}_a"),
                json!({"createdAt": "2099-01-01"}),
            );
            put(
                &conn,
                USER,
                "submissions",
                &format!("new_{page}_b"),
                json!({"createdAt": "2000-01-01"}),
            );
            added += 2;
            if page <= 20 {
                // Far from the walk's position (the tail of a desc walk): not yet returned.
                let victim = before[before.len() - 1 - page].clone();
                conn.execute(
                    "DELETE FROM _plugin_storage WHERE user_id = ?1 AND id = ?2",
                    [USER, &victim],
                )
                .unwrap();
                deleted.push(victim);
            }
        },
    );
    assert_eq!(deleted.len(), 20);
    for id in &deleted {
        assert!(
            !got.contains(id),
            "{id} was deleted before the walk reached it"
        );
    }
    let before: Vec<String> = before
        .into_iter()
        .filter(|id| !deleted.contains(id))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for id in &got {
        assert!(seen.insert(id.clone()), "{id} returned twice");
    }
    for id in &before {
        assert!(seen.contains(id), "{id} existed throughout but was skipped");
    }
    let order: Vec<&String> = got.iter().filter(|id| before.contains(id)).collect();
    let expected: Vec<&String> = before.iter().collect();
    assert_eq!(order, expected);
    assert!(added > 0);
}

#[test]
fn filters_are_exact_about_json_types() {
    let m = forms_manifest();
    let conn = db(&m);
    let values = [
        ("str1", json!("1")),
        ("num1", json!(1)),
        ("real1", json!(1.0)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("num0", json!(0)),
        ("strtrue", json!("true")),
        ("obj", json!({"x": 1})),
        ("arr", json!(["1"])),
        ("null", json!(null)),
        (
            "quote",
            json!("O'Brien \" ; DROP TABLE _plugin_storage; --"),
        ),
        ("big", json!(18446744073709551615u64)),
        ("imax", json!(i64::MAX)),
        ("uni", json!("日本語")),
        ("empty", json!("")),
    ];
    for (id, v) in &values {
        put(
            &conn,
            USER,
            "submissions",
            id,
            json!({"status": v, "formId": "f"}),
        );
    }
    put(
        &conn,
        USER,
        "submissions",
        "missing",
        json!({"formId": "f"}),
    );
    let ids = |q: Value| -> Vec<String> {
        let plan = plan_query(
            "forms",
            "submissions",
            USER,
            &vq(json!({"where": {"status": q}})),
            SECRET,
        )
        .unwrap();
        let mut v: Vec<String> = run(&conn, &plan.sql, &plan.params)
            .into_iter()
            .map(|r| r.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(json!("1")), ["str1"]);
    assert_eq!(ids(json!(1)), ["num1", "real1"]);
    assert_eq!(ids(json!(true)), ["true"]);
    assert_eq!(ids(json!(false)), ["false"]);
    assert_eq!(ids(json!(0)), ["num0"]);
    assert_eq!(ids(json!("true")), ["strtrue"]);
    assert_eq!(
        ids(json!("O'Brien \" ; DROP TABLE _plugin_storage; --")),
        ["quote"]
    );
    assert_eq!(ids(json!(18446744073709551615u64)), ["big"]);
    // An integer of 2^53 or more is refused (query::EXACT_INTEGER_LIMIT: D1 would round it).
    for big in [
        json!(i64::MAX),
        json!(9007199254740992u64),
        json!(-9007199254740993i64),
    ] {
        let e = plan_query(
            "forms",
            "submissions",
            USER,
            &vq(json!({"where": {"status": big}})),
            SECRET,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{big}");
    }
    assert_eq!(ids(json!(9007199254740991u64)), Vec::<String>::new());
    assert_eq!(ids(json!("日本語")), ["uni"]);
    assert_eq!(ids(json!("")), ["empty"]);
    assert_eq!(ids(json!({"in": [true, false]})), ["false", "true"]);
    // One boolean alone: the type guard is that boolean's own JSON type.
    assert_eq!(ids(json!({"in": [true]})), ["true"]);
    assert_eq!(ids(json!({"in": [false, false]})), ["false"]);
    assert_eq!(ids(json!({"in": ["1", "true"]})), ["str1", "strtrue"]);
    assert_eq!(ids(json!({"in": [0, 1]})), ["num0", "num1", "real1"]);
    assert!(ids(json!({"in": []})).is_empty());
    // Number ranges see numbers only (not "1", not true, not objects).
    assert_eq!(ids(json!({"gte": 0, "lt": 2})), ["num0", "num1", "real1"]);
    assert_eq!(ids(json!({"gt": 1e18})), ["big", "imax"]);
    assert_eq!(ids(json!({"lt": 0.5})), ["num0"]);
    // String ranges see strings only (not the JSON text of objects and arrays).
    assert_eq!(ids(json!({"lt": "2"})), ["empty", "str1"]);
    assert_eq!(ids(json!({"gte": "t"})), ["strtrue", "uni"]);
    assert_eq!(ids(json!({"startsWith": "tr"})), ["strtrue"]);
    assert_eq!(ids(json!({"startsWith": "O'"})), ["quote"]);
    assert_eq!(ids(json!({"startsWith": "日本"})), ["uni"]);
    assert_eq!(ids(json!({"startsWith": "["})), Vec::<String>::new());
    assert_eq!(
        ids(json!({"startsWith": ""})),
        ["empty", "quote", "str1", "strtrue", "uni"]
    );
    // The table is intact.
    assert_eq!(count(&conn, json!({"formId": "f"})), 16);
}

#[test]
fn starts_with_at_the_top_of_unicode() {
    let m = forms_manifest();
    let conn = db(&m);
    for (id, s) in [
        ("a", "\u{10FFFF}x"),
        ("b", "\u{10FFFF}"),
        ("c", "\u{D7FF}z"),
        ("d", "\u{E000}"),
        ("e", "zz"),
    ] {
        put(&conn, USER, "submissions", id, json!({"status": s}));
    }
    let ids = |p: &str| -> Vec<String> {
        let plan = plan_query(
            "forms",
            "submissions",
            USER,
            &vq(json!({"where": {"status": {"startsWith": p}}})),
            SECRET,
        )
        .unwrap();
        let mut v: Vec<String> = run(&conn, &plan.sql, &plan.params)
            .into_iter()
            .map(|r| r.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("\u{10FFFF}"), ["a", "b"]);
    assert_eq!(ids("\u{D7FF}"), ["c"]);
    assert_eq!(ids("z"), ["e"]);
}

#[test]
fn count_matches_filters_and_user_scope() {
    let conn = seeded();
    assert_eq!(count(&conn, json!({})), 300);
    assert_eq!(count(&conn, json!({"formId": "contact"})), 100);
    assert_eq!(
        count(&conn, json!({"status": "pending", "formId": "contact"})),
        50
    );
    let filters =
        validate_where(None, forms_manifest().collection("submissions").unwrap()).unwrap();
    let stmt = plan_count("forms", "submissions", "nobody", &filters).unwrap();
    let n: i64 = conn
        .query_row(&stmt.sql, params_from_iter(bind(&stmt.params)), |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn cursor_is_bound_to_its_query_and_user() {
    let conn = seeded();
    let q = json!({"where": {"formId": "contact"}, "orderBy": {"createdAt": "desc"}, "limit": 5});
    let plan = plan_query("forms", "submissions", USER, &vq(q.clone()), SECRET).unwrap();
    let page = plan.finish(run(&conn, &plan.sql, &plan.params)).unwrap();
    let cursor = page.cursor.unwrap();
    let with = |mut q: Value| {
        q["cursor"] = json!(cursor);
        vq(q)
    };
    // Same query, another page size: fine.
    let mut other_limit = q.clone();
    other_limit["limit"] = json!(50);
    assert!(plan_query("forms", "submissions", USER, &with(other_limit), SECRET).is_ok());
    // Another user, collection scope, filter, order or secret: INVALID_CURSOR.
    let bad = [
        plan_query("forms", "submissions", "user-2", &with(q.clone()), SECRET),
        plan_query("other", "submissions", USER, &with(q.clone()), SECRET),
        plan_query(
            "forms",
            "submissions",
            USER,
            &with(json!({"where": {"formId": "survey"}, "orderBy": {"createdAt": "desc"}})),
            SECRET,
        ),
        plan_query(
            "forms",
            "submissions",
            USER,
            &with(json!({"where": {"formId": "contact"}, "orderBy": {"createdAt": "asc"}})),
            SECRET,
        ),
        plan_query(
            "forms",
            "submissions",
            USER,
            &with(json!({"where": {"formId": "contact"}})),
            SECRET,
        ),
        plan_query(
            "forms",
            "submissions",
            USER,
            &with(q.clone()),
            b"another secret of enough length!!",
        ),
    ];
    for r in bad {
        assert_eq!(r.unwrap_err().code, ErrorCode::InvalidCursor);
    }
}

#[test]
fn every_declared_index_is_created_and_names_do_not_collide() {
    let m = Manifest::parse(&json!({
        "id": "a_b",
        "storage": {"c": {"indexes": ["x", "author.name", ["x", "y", "z", "w"]]}, "C": {"indexes": ["x"]}}
    }))
    .unwrap();
    let m2 = Manifest::parse(&json!({"id": "a", "storage": {"b_c": {"indexes": ["x"]}}})).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(CREATE_TABLE_SQL).unwrap();
    let mut names = std::collections::HashSet::new();
    for (name, sql) in manifest_index_ddl(&m)
        .unwrap()
        .into_iter()
        .chain(manifest_index_ddl(&m2).unwrap())
    {
        assert!(
            names.insert(name.to_lowercase()),
            "index name collision: {name}"
        );
        conn.execute_batch(&sql).unwrap();
        // Idempotent on restart.
        conn.execute_batch(&sql).unwrap();
    }
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 5);
}

/// Pages that end inside the run of items missing the order field (NULL sort key) continue
/// through the index too, in both directions.
#[test]
fn null_run_cursors_keep_using_the_index() {
    let m = forms_manifest();
    let conn = db(&m);
    for i in 0..200 {
        let data = if i % 4 == 0 {
            json!({"createdAt": format!("2024-{i:03}")})
        } else {
            json!({"formId": "x"})
        };
        put(&conn, USER, "submissions", &format!("s{i:03}"), data);
    }
    conn.execute_batch("ANALYZE").unwrap();
    for (dir, skip) in [("asc", 0), ("desc", 6)] {
        // asc: the first page ends among NULLs; desc: page 7 (after 60 non-null keys) does.
        let q = json!({"orderBy": {"createdAt": dir}, "limit": 10});
        let mut cursor: Option<String> = None;
        for _ in 0..=skip {
            let mut q = q.clone();
            if let Some(c) = &cursor {
                q["cursor"] = json!(c);
            }
            let plan = plan_query("forms", "submissions", USER, &vq(q), SECRET).unwrap();
            let page = plan.finish(run(&conn, &plan.sql, &plan.params)).unwrap();
            cursor = page.cursor;
        }
        let mut q = q.clone();
        q["cursor"] = json!(cursor.unwrap());
        let plan = plan_query("forms", "submissions", USER, &vq(q), SECRET).unwrap();
        let page = plan.finish(run(&conn, &plan.sql, &plan.params)).unwrap();
        assert!(
            page.items.iter().any(|i| i.data.get("createdAt").is_none()),
            "{dir}: page is in the NULL run"
        );
        let eqp = explain(&conn, &plan.sql, &plan.params);
        assert!(
            eqp.contains("idx_forms_submissions_createdAt"),
            "{dir}: {eqp}"
        );
        assert!(!eqp.contains("SCAN _plugin_storage"), "{dir}: {eqp}");
    }
}

/// An independent oracle written in Rust for the documented semantics (exact JSON types;
/// order: missing/null < numbers and booleans as 0/1 < strings by bytes; ties by id).
mod oracle {
    use serde_json::Value;
    use std::cmp::Ordering;

    fn class(v: Option<&Value>) -> (u8, f64, Vec<u8>) {
        match v {
            None | Some(Value::Null) => (0, 0.0, vec![]),
            Some(Value::Bool(b)) => (1, f64::from(u8::from(*b)), vec![]),
            Some(Value::Number(n)) => (1, n.as_f64().unwrap(), vec![]),
            Some(Value::String(s)) => (2, 0.0, s.as_bytes().to_vec()),
            Some(other) => panic!("oracle does not model {other}"),
        }
    }

    pub fn cmp_keys(a: Option<&Value>, b: Option<&Value>) -> Ordering {
        let (ca, na, sa) = class(a);
        let (cb, nb, sb) = class(b);
        ca.cmp(&cb)
            .then(na.partial_cmp(&nb).unwrap())
            .then(sa.cmp(&sb))
    }

    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    fn eq(stored: &Value, want: &Value) -> bool {
        match (stored, want) {
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(_), Value::Number(_)) => num(stored) == num(want),
            _ => false,
        }
    }

    fn bound_ok(stored: &Value, bound: &Value, op: &str) -> bool {
        let ord = match (stored, bound) {
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Number(_), Value::Number(_)) => num(stored)
                .unwrap()
                .partial_cmp(&num(bound).unwrap())
                .unwrap(),
            _ => return false,
        };
        match op {
            "gt" => ord == Ordering::Greater,
            "gte" => ord != Ordering::Less,
            "lt" => ord == Ordering::Less,
            "lte" => ord != Ordering::Greater,
            _ => unreachable!(),
        }
    }

    pub fn matches(data: &Value, where_: &Value) -> bool {
        where_.as_object().unwrap().iter().all(|(field, cond)| {
            let Some(stored) = data.get(field) else {
                return false;
            };
            match cond {
                Value::Object(ops) => ops.iter().all(|(op, arg)| match op.as_str() {
                    "in" => arg.as_array().unwrap().iter().any(|w| eq(stored, w)),
                    "startsWith" => stored
                        .as_str()
                        .is_some_and(|s| s.starts_with(arg.as_str().unwrap())),
                    _ => bound_ok(stored, arg, op),
                }),
                want => eq(stored, want),
            }
        })
    }
}

#[test]
fn random_data_and_queries_agree_with_an_independent_oracle() {
    let m = forms_manifest();
    let conn = db(&m);
    // Deterministic LCG: no randomness between runs.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let form_ids = [
        json!("a"),
        json!("b"),
        json!("c"),
        json!(1),
        json!(2),
        json!(true),
    ];
    let statuses = [
        json!("x"),
        json!("y"),
        json!(1.5),
        json!(false),
        json!(null),
        json!("x y"),
    ];
    let dates = [
        json!("2024-01"),
        json!("2024-02"),
        json!("2024-03"),
        json!(3),
        json!(-1.25),
        json!(null),
        json!(true),
        json!(""),
    ];
    let mut items: Vec<(String, Value)> = Vec::new();
    for i in 0..160 {
        let mut data = serde_json::Map::new();
        for (field, pool) in [
            ("formId", &form_ids[..]),
            ("status", &statuses[..]),
            ("createdAt", &dates[..]),
        ] {
            let pick = next(pool.len() + 1);
            if pick < pool.len() {
                data.insert(field.into(), pool[pick].clone());
            }
        }
        let id = format!("id{:03}", next(1000) * 1000 + i);
        put(&conn, USER, "submissions", &id, Value::Object(data.clone()));
        items.push((id, Value::Object(data)));
    }
    let wheres = [
        json!({}),
        json!({"formId": "a"}),
        json!({"formId": 1}),
        json!({"formId": true}),
        json!({"formId": {"in": ["a", "c"]}}),
        json!({"formId": {"in": [1, 2]}}),
        json!({"status": "x", "formId": "b"}),
        json!({"status": false}),
        json!({"status": {"startsWith": "x"}}),
        json!({"createdAt": {"gte": "2024-02"}}),
        json!({"createdAt": {"gt": -2, "lte": 3}}),
        json!({"createdAt": {"lt": "2024-02"}}),
        json!({"formId": "a", "createdAt": {"gte": "2024-01", "lt": "2024-03"}}),
    ];
    let mut checked = 0;
    for w in &wheres {
        for order in [None, Some("asc"), Some("desc")] {
            for limit in [1, 3, 10, 1000] {
                let mut q = json!({"where": w, "limit": limit});
                if let Some(dir) = order {
                    q["orderBy"] = json!({"createdAt": dir});
                }
                let got = drain(&conn, q.clone(), &mut |_| {});
                let mut want: Vec<&(String, Value)> = items
                    .iter()
                    .filter(|(_, d)| oracle::matches(d, w))
                    .collect();
                want.sort_by(|(ia, da), (ib, db)| match order {
                    None => ia.cmp(ib),
                    Some(dir) => {
                        let o = oracle::cmp_keys(da.get("createdAt"), db.get("createdAt"))
                            .then(ia.cmp(ib));
                        if dir == "desc" {
                            o.reverse()
                        } else {
                            o
                        }
                    }
                });
                let want: Vec<String> = want.into_iter().map(|(id, _)| id.clone()).collect();
                assert_eq!(got, want, "{q}");
                checked += 1;
            }
        }
        let where_ = serde_json::from_value(w.clone()).unwrap();
        let filters = validate_where(Some(&where_), m.collection("submissions").unwrap()).unwrap();
        let stmt = plan_count("forms", "submissions", USER, &filters).unwrap();
        let n: i64 = conn
            .query_row(&stmt.sql, params_from_iter(bind(&stmt.params)), |r| {
                r.get(0)
            })
            .unwrap();
        let expected = items.iter().filter(|(_, d)| oracle::matches(d, w)).count();
        assert_eq!(n as usize, expected, "count {w}");
    }
    assert_eq!(checked, wheres.len() * 3 * 4);
}

#[test]
fn a_page_stops_before_its_items_pass_the_byte_cap() {
    let m = forms_manifest();
    let conn = db(&m);
    // 20 items of about 1 MiB: a page of 50 holds the first 7 (8 would pass 8 MiB).
    let big = "x".repeat(1024 * 1024 - 64);
    for i in 0..20 {
        put(
            &conn,
            USER,
            "submissions",
            &format!("i{i:02}"),
            json!({"formId": "f", "createdAt": i, "blob": big}),
        );
    }
    for q in [
        json!({"where": {"formId": "f"}, "limit": 50}),
        json!({"where": {"formId": "f"}, "orderBy": {"createdAt": "desc"}, "limit": 50}),
    ] {
        let mut seen = Vec::new();
        let mut next = q.clone();
        loop {
            let plan = plan_query("forms", "submissions", USER, &vq(next.clone()), SECRET).unwrap();
            let (rows, cut) = run_page(&conn, &plan.sql, &plan.params);
            let bytes: usize = rows.iter().map(|r| r.data.to_string().len()).sum();
            assert!(bytes <= MAX_PAGE_BYTES, "{bytes}");
            let page = plan.finish_page(rows, cut).unwrap();
            assert!(!page.items.is_empty());
            seen.extend(page.items.iter().map(|i| i.id.clone()));
            let Some(c) = page.cursor else {
                assert!(!page.has_more);
                break;
            };
            assert!(page.has_more);
            next = q.clone();
            next["cursor"] = json!(c);
        }
        let mut want: Vec<String> = (0..20).map(|i| format!("i{i:02}")).collect();
        if q["orderBy"].is_object() {
            want.reverse();
        }
        assert_eq!(seen, want, "{q}");
    }
    // An item larger than the cap still comes, alone.
    put(
        &conn,
        USER,
        "submissions",
        "huge",
        json!({"formId": "g", "blob": "x".repeat(MAX_PAGE_BYTES + 1)}),
    );
    put(&conn, USER, "submissions", "tiny", json!({"formId": "g"}));
    let plan = plan_query(
        "forms",
        "submissions",
        USER,
        &vq(json!({"where": {"formId": "g"}})),
        SECRET,
    )
    .unwrap();
    let (rows, cut) = run_page(&conn, &plan.sql, &plan.params);
    assert_eq!((rows.len(), cut), (1, true));
    let page = plan.finish_page(rows, cut).unwrap();
    assert_eq!(page.items[0].id, "huge");
    assert!(page.has_more && page.cursor.is_some());
}
