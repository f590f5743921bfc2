//! Query validation against declared indexes, the SQL planner's statements and cursors.

use super::sql::{check_params, prefix_successor};
use super::*;
use crate::manifest::Index;
use serde_json::json;

#[test]
fn integers_past_two_to_the_53_are_refused_in_where_and_cursors() {
    let exact = SqlValue::Integer(EXACT_INTEGER_LIMIT - 1);
    assert!(check_params(std::slice::from_ref(&exact)).is_ok());
    for big in [
        EXACT_INTEGER_LIMIT,
        -EXACT_INTEGER_LIMIT,
        i64::MAX,
        i64::MIN,
    ] {
        let e = check_params(&[SqlValue::Integer(big)]).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidArgument, "{big}");
    }
    let decl = crate::manifest::CollectionDecl {
        indexes: vec![Index::Single("n".into())],
    };
    let opts = QueryOptions::from_json(&json!({"orderBy": {"n": "asc"}, "limit": 1})).unwrap();
    let plan = plan_query("p", "c", "u", &validate(&opts, &decl).unwrap(), b"k").unwrap();
    let row = |id: &str, key: i64| PlanRow {
        id: id.into(),
        data: json!({}),
        sort_key: SqlValue::Integer(key),
    };
    // Only the row a cursor would carry matters.
    let ok = plan.finish(vec![row("a", 1), row("b", EXACT_INTEGER_LIMIT)]);
    assert!(ok.unwrap().cursor.is_some());
    let e = plan
        .finish(vec![row("a", EXACT_INTEGER_LIMIT), row("b", 1)])
        .unwrap_err();
    assert_eq!(e.code, crate::ErrorCode::InvalidArgument);
    let where_big = QueryOptions::from_json(&json!({"where": {"n": 9007199254740993u64}})).unwrap();
    let vq = validate(&where_big, &decl).unwrap();
    assert!(plan_query("p", "c", "u", &vq, b"k").is_err());
}

fn decl(indexes: Value) -> CollectionDecl {
    let m =
        Manifest::parse(&json!({"id": "forms", "storage": {"c": {"indexes": indexes}}})).unwrap();
    m.collection("c").unwrap().clone()
}

fn seed_decl() -> CollectionDecl {
    decl(json!([
        "formId",
        "status",
        "createdAt",
        ["formId", "createdAt"],
        ["status", "createdAt"]
    ]))
}

fn opts(q: Value) -> QueryOptions {
    serde_json::from_value(q).unwrap()
}

fn check(q: Value, d: &CollectionDecl) -> Result<ValidatedQuery, Error> {
    validate(&opts(q), d)
}

fn not_indexed(q: Value, d: &CollectionDecl) -> Vec<String> {
    let e = check(q.clone(), d).expect_err("should be NOT_INDEXED");
    assert_eq!(e.code, ErrorCode::NotIndexed, "{q}: {e}");
    serde_json::from_value(e.detail.unwrap()["fields"].clone()).unwrap()
}

fn invalid_paths(q: Value) -> Vec<String> {
    let e = check(q.clone(), &seed_decl()).expect_err("should be INVALID_ARGUMENT");
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{q}: {e}");
    e.detail
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn seed_index_table() {
    // | Filter by formId | "formId" |
    let row1 = json!({"where": {"formId": "contact"}});
    assert!(check(row1.clone(), &decl(json!(["formId"]))).is_ok());
    assert_eq!(not_indexed(row1.clone(), &decl(json!([]))), ["formId"]);
    assert_eq!(not_indexed(row1, &decl(json!(["status"]))), ["formId"]);
    // | Filter by formId, order by createdAt | ["formId", "createdAt"] |
    let row2 = json!({"where": {"formId": "contact"}, "orderBy": {"createdAt": "desc"}});
    assert!(check(row2.clone(), &decl(json!([["formId", "createdAt"]]))).is_ok());
    assert_eq!(
        not_indexed(row2.clone(), &decl(json!(["formId"]))),
        ["createdAt"]
    );
    assert_eq!(
        not_indexed(row2, &decl(json!([["createdAt", "formId"]]))),
        ["formId"]
    );
    // | Order by createdAt only | "createdAt" |
    let row3 = json!({"orderBy": {"createdAt": "desc"}});
    assert!(check(row3.clone(), &decl(json!(["createdAt"]))).is_ok());
    assert_eq!(
        not_indexed(row3, &decl(json!([["formId", "createdAt"]]))),
        ["createdAt"]
    );
    // | Filter by status and formId | "status" and "formId" (separate) |
    let row4 = json!({"where": {"status": "pending", "formId": "contact"}});
    assert!(check(row4.clone(), &decl(json!(["status", "formId"]))).is_ok());
    assert_eq!(not_indexed(row4, &decl(json!(["status"]))), ["formId"]);
}

#[test]
fn seed_composite_examples() {
    let d = decl(json!([["formId", "createdAt"]]));
    // uses index
    let q = check(
        json!({"where": {"formId": "contact"}, "orderBy": {"createdAt": "desc"}}),
        &d,
    )
    .unwrap();
    assert_eq!(
        q.order_by,
        Some(OrderBy {
            field: "createdAt".into(),
            direction: Direction::Desc
        })
    );
    // uses index (filter only)
    assert!(check(json!({"where": {"formId": "contact"}}), &d).is_ok());
    // does NOT use this composite — filter starts at the wrong field
    assert_eq!(
        not_indexed(json!({"where": {"createdAt": {"gte": "2024-01-01"}}}), &d),
        ["createdAt"]
    );
    // Leftmost prefix: the second field is usable once the first is pinned.
    assert!(check(
        json!({"where": {"formId": "contact", "createdAt": {"gte": "2024-01-01"}}}),
        &d
    )
    .is_ok());
    assert!(check(
        json!({"where": {"formId": {"in": ["a", "b"]}}, "orderBy": {"createdAt": "asc"}}),
        &d
    )
    .is_ok());
    // A range on the first field does not pin it.
    assert_eq!(
        not_indexed(
            json!({"where": {"formId": {"startsWith": "c"}}, "orderBy": {"createdAt": "asc"}}),
            &d
        ),
        ["createdAt"]
    );
    // Ordering by the composite's first field is fine.
    assert!(check(json!({"orderBy": {"formId": "asc"}}), &d).is_ok());
}

#[test]
fn seed_query_and_where_examples() {
    let q = check(
        json!({"where": {"formId": "contact", "status": "pending"}, "orderBy": {"createdAt": "desc"}, "limit": 20}),
        &seed_decl(),
    )
    .unwrap();
    assert_eq!(q.limit, 20);
    assert_eq!(
        q.filters["formId"],
        Condition::Eq(SqlValue::Text("contact".into()))
    );
    let d = decl(json!(["status", "count", "archived", "score", "createdAt"]));
    let q = check(
        json!({"where": {"status": "pending", "count": 5, "archived": false}}),
        &d,
    )
    .unwrap();
    assert_eq!(
        q.filters["status"],
        Condition::Eq(SqlValue::Text("pending".into()))
    );
    assert_eq!(q.filters["count"], Condition::Eq(SqlValue::Integer(5)));
    assert_eq!(q.filters["archived"], Condition::Eq(SqlValue::Bool(false)));
    assert_eq!(
        check(json!({"orderBy": {"score": "asc"}}), &d)
            .unwrap()
            .order_by
            .unwrap()
            .direction,
        Direction::Asc
    );
    assert_eq!(check(json!({}), &d).unwrap().limit, DEFAULT_LIMIT);
    // The drain loop's query shape.
    assert!(check(json!({"orderBy": {"createdAt": "desc"}, "limit": 100}), &d).is_ok());
}

#[test]
fn operators() {
    let d = decl(json!(["n", "s"]));
    let f = |w: Value| check(json!({ "where": w }), &d).map(|q| q.filters);
    assert_eq!(
        f(json!({"n": {"gt": 1, "lte": 9.5}})).unwrap()["n"],
        Condition::Range {
            lower: Some(Bound {
                value: SqlValue::Integer(1),
                inclusive: false
            }),
            upper: Some(Bound {
                value: SqlValue::Real(9.5),
                inclusive: true
            }),
        }
    );
    assert_eq!(
        f(json!({"s": {"in": ["a", "b"]}})).unwrap()["s"],
        Condition::In(vec![SqlValue::Text("a".into()), SqlValue::Text("b".into())])
    );
    assert_eq!(
        f(json!({"s": {"in": []}})).unwrap()["s"],
        Condition::In(vec![])
    );
    assert_eq!(
        f(json!({"s": {"startsWith": "ab"}})).unwrap()["s"],
        Condition::StartsWith("ab".into())
    );
    assert!(f(json!({"s": {"gte": "a", "lt": "b"}})).is_ok());
}

#[test]
fn hostile_where_is_rejected_with_paths() {
    let cases = [
        (json!({"where": {"a'b": 1}}), "$.where[\"a'b\"]"),
        (json!({"where": {"$.formId": 1}}), "$.where[\"$.formId\"]"),
        (json!({"where": {"__proto__": 1}}), "$.where.__proto__"),
        (
            json!({"where": {"formId') OR 1=1 --": 1}}),
            "$.where[\"formId') OR 1=1 --\"]",
        ),
        (json!({"where": {"": 1}}), "$.where[\"\"]"),
        (json!({"where": {"formId": null}}), "$.where.formId"),
        (json!({"where": {"formId": ["a"]}}), "$.where.formId"),
        (json!({"where": {"formId": {}}}), "$.where.formId"),
        (json!({"where": {"formId": {"eq": 1}}}), "$.where.formId.eq"),
        (
            json!({"where": {"formId": {"$gt": 1}}}),
            "$.where.formId[\"$gt\"]",
        ),
        (
            json!({"where": {"formId": {"in": "a"}}}),
            "$.where.formId.in",
        ),
        (
            json!({"where": {"formId": {"in": ["a", 1]}}}),
            "$.where.formId.in",
        ),
        (
            json!({"where": {"formId": {"in": [true, 1]}}}),
            "$.where.formId.in",
        ),
        (
            json!({"where": {"formId": {"in": [null]}}}),
            "$.where.formId.in[0]",
        ),
        (
            json!({"where": {"formId": {"in": [{"x": 1}]}}}),
            "$.where.formId.in[0]",
        ),
        (
            json!({"where": {"formId": {"gt": true}}}),
            "$.where.formId.gt",
        ),
        (
            json!({"where": {"formId": {"gt": {"gt": 1}}}}),
            "$.where.formId.gt",
        ),
        (
            json!({"where": {"formId": {"gt": 1, "lt": "z"}}}),
            "$.where.formId",
        ),
        (
            json!({"where": {"formId": {"gt": 1, "in": [1]}}}),
            "$.where.formId",
        ),
        (
            json!({"where": {"formId": {"startsWith": "a", "lt": "b"}}}),
            "$.where.formId",
        ),
        (
            json!({"where": {"formId": {"startsWith": 1}}}),
            "$.where.formId.startsWith",
        ),
        (
            json!({"where": {"formId": "x".repeat(MAX_WHERE_STRING_BYTES + 1)}}),
            "$.where.formId",
        ),
        (json!({"where": {"formId": "a\u{0}b"}}), "$.where.formId"),
        (
            json!({"orderBy": {"createdAt": "DESC"}}),
            "$.orderBy.createdAt",
        ),
        (json!({"orderBy": {"createdAt": 1}}), "$.orderBy.createdAt"),
        (
            json!({"orderBy": {"createdAt": "asc", "formId": "asc"}}),
            "$.orderBy",
        ),
        (json!({"orderBy": "createdAt"}), "$.orderBy"),
        (
            json!({"orderBy": {"__proto__": "asc"}}),
            "$.orderBy.__proto__",
        ),
        (json!({"limit": 0}), "$.limit"),
        (json!({"limit": 1001}), "$.limit"),
        (json!({"cursor": ""}), "$.cursor"),
    ];
    for (q, path) in cases {
        assert_eq!(invalid_paths(q.clone()), [path], "{q}");
    }
    let in_too_long: Vec<i32> = (0..=MAX_IN_VALUES as i32).collect();
    assert_eq!(
        invalid_paths(json!({"where": {"formId": {"in": in_too_long}}})),
        ["$.where.formId.in"]
    );
    // gt and gte together.
    let p = invalid_paths(json!({"where": {"formId": {"gt": 1, "gte": 2}}}));
    assert_eq!(p.len(), 1);
}

#[test]
fn every_shape_problem_is_reported_at_once() {
    let p = invalid_paths(json!({
        "where": {"a'b": 1, "formId": null, "status": {"bogus": 1}},
        "orderBy": {"createdAt": "sideways"},
        "limit": 0
    }));
    assert_eq!(
        p,
        [
            "$.where[\"a'b\"]",
            "$.where.formId",
            "$.where.status.bogus",
            "$.orderBy.createdAt",
            "$.limit"
        ]
    );
}

#[test]
fn problem_lists_are_bounded() {
    let mut w = serde_json::Map::new();
    for i in 0..10_000 {
        w.insert(format!("bad'{i}"), json!(1));
    }
    assert_eq!(
        invalid_paths(json!({ "where": w })).len(),
        crate::manifest::MAX_PROBLEMS + 1
    );
}

#[test]
fn deep_nesting_is_rejected_without_recursion() {
    let mut v = json!(1);
    for _ in 0..100 {
        v = json!({ "gt": v });
    }
    assert_eq!(
        invalid_paths(json!({"where": {"formId": v}})),
        ["$.where.formId.gt"]
    );
}

#[test]
fn numbers_and_nan_like_strings() {
    let d = decl(json!(["n"]));
    let eq = |v: Value| match check(json!({"where": {"n": v}}), &d)
        .unwrap()
        .filters
        .remove("n")
    {
        Some(Condition::Eq(x)) => x,
        other => panic!("{other:?}"),
    };
    assert_eq!(eq(json!(u64::MAX)), SqlValue::Real(u64::MAX as f64));
    assert_eq!(eq(json!(i64::MIN)), SqlValue::Integer(i64::MIN));
    assert_eq!(eq(json!(i64::MAX)), SqlValue::Integer(i64::MAX));
    assert_eq!(eq(json!(1e308)), SqlValue::Real(1e308));
    assert_eq!(eq(json!(-0.0)), SqlValue::Real(-0.0));
    for s in ["NaN", "Infinity", "-Infinity", "1e400", "0x10", ""] {
        assert_eq!(
            eq(json!(s)),
            SqlValue::Text(s.into()),
            "strings stay strings"
        );
    }
    // 1e400 and NaN are not JSON numbers: the wire rejects them before validation.
    assert!(serde_json::from_str::<QueryOptions>(r#"{"where": {"n": 1e400}}"#).is_err());
    assert!(serde_json::from_str::<QueryOptions>(r#"{"where": {"n": NaN}}"#).is_err());
    // limit outside u32 is a wire (deserialisation) error, never a panic.
    for bad in [
        r#"{"limit": -1}"#,
        r#"{"limit": 1.5}"#,
        r#"{"limit": 1e400}"#,
        r#"{"limit": "5"}"#,
    ] {
        assert!(serde_json::from_str::<QueryOptions>(bad).is_err(), "{bad}");
    }
}

#[test]
fn options_from_json_reports_typos_and_wire_types() {
    let o = QueryOptions::from_json(
        &json!({"where": {"a": 1}, "orderBy": {"a": "asc"}, "limit": 3, "cursor": "c"}),
    )
    .unwrap();
    assert_eq!(
        o,
        opts(json!({"where": {"a": 1}, "orderBy": {"a": "asc"}, "limit": 3, "cursor": "c"}))
    );
    assert_eq!(
        QueryOptions::from_json(&json!(null)).unwrap(),
        QueryOptions::default()
    );
    assert_eq!(
        QueryOptions::from_json(&json!({"where": null, "limit": null})).unwrap(),
        QueryOptions::default()
    );
    let e = QueryOptions::from_json(&json!({
        "orderby": {"a": "asc"}, "where": [1], "limit": -1, "cursor": 5, "__proto__": {}
    }))
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    let paths: Vec<&str> = e
        .detail
        .as_ref()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["$.__proto__", "$.cursor", "$.limit", "$.orderby", "$.where"]
    );
    for bad in [
        json!({"limit": 1.5}),
        json!({"limit": 4294967296u64}),
        json!({"limit": "5"}),
        json!([]),
    ] {
        assert_eq!(
            QueryOptions::from_json(&bad).unwrap_err().code,
            ErrorCode::InvalidArgument,
            "{bad}"
        );
    }
}

#[test]
fn limits_and_empty_order() {
    let d = seed_decl();
    assert_eq!(check(json!({"limit": 1}), &d).unwrap().limit, 1);
    assert_eq!(check(json!({"limit": 1000}), &d).unwrap().limit, 1000);
    assert_eq!(check(json!({"orderBy": {}}), &d).unwrap().order_by, None);
    assert_eq!(check(json!({"orderBy": null}), &d).unwrap().order_by, None);
}

#[test]
fn count_where_uses_the_same_rules() {
    let d = seed_decl();
    let w: WhereClause = serde_json::from_value(json!({"status": "pending"})).unwrap();
    assert_eq!(validate_where(Some(&w), &d).unwrap().len(), 1);
    assert!(validate_where(None, &d).unwrap().is_empty());
    let w: WhereClause = serde_json::from_value(json!({"email": "x"})).unwrap();
    assert_eq!(
        validate_where(Some(&w), &d).unwrap_err().code,
        ErrorCode::NotIndexed
    );
    let w: WhereClause = serde_json::from_value(json!({"status": [1]})).unwrap();
    assert_eq!(
        validate_where(Some(&w), &d).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}

#[test]
fn wire_shape() {
    let o = opts(json!({"where": {"a": 1}, "orderBy": {"a": "asc"}, "limit": 3, "cursor": "c"}));
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        json!({"where": {"a": 1}, "orderBy": {"a": "asc"}, "limit": 3, "cursor": "c"})
    );
    let op: crate::api::CollectionOp = serde_json::from_value(
        json!({"op": "query", "where": {"formId": "x"}, "orderBy": {"createdAt": "desc"}}),
    )
    .unwrap();
    let crate::api::CollectionOp::Query(q) = op else {
        panic!("query op")
    };
    assert!(validate(&q, &seed_decl()).is_ok());
}

#[test]
fn values_never_reach_sql_text() {
    let hostile = "'); DROP TABLE _plugin_storage; --";
    let q = check(
        json!({"where": {"formId": hostile, "status": {"in": [hostile]}, "createdAt": {"startsWith": hostile}}}),
        &seed_decl(),
    )
    .unwrap();
    let plan = plan_query("forms", "submissions", "u' OR 1=1", &q, b"k").unwrap();
    assert!(!plan.sql.contains("DROP"), "{}", plan.sql);
    assert!(!plan.sql.contains("OR 1=1"));
    assert!(
        !plan.sql.contains("forms"),
        "plugin id is a parameter in queries"
    );
    assert!(plan.params.contains(&SqlValue::Text(hostile.into())));
    let c = plan_count("forms", "submissions", "u", &q.filters).unwrap();
    assert!(!c.sql.contains("DROP"));
}

#[test]
fn planner_rejects_bad_scope_and_oversized_queries() {
    let q = check(json!({}), &seed_decl()).unwrap();
    for (p, c) in [
        ("Forms", "c"),
        ("forms", "a'b"),
        ("forms'", "c"),
        ("forms", "__proto__"),
        ("", "c"),
    ] {
        assert_eq!(
            plan_query(p, c, "u", &q, b"k").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            plan_count(p, c, "u", &q.filters).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
    let d = decl(json!(["a", "b", "c"]));
    let fifty: Vec<usize> = (0..MAX_IN_VALUES).collect();
    let q = check(
        json!({"where": {"a": {"in": fifty}, "b": {"in": fifty}}}),
        &d,
    )
    .unwrap();
    assert_eq!(
        plan_query("forms", "c", "u", &q, b"k").unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        plan_count("forms", "c", "u", &q.filters).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}

#[test]
fn index_ddl_matches_the_seed_form() {
    let (name, sql) = index_ddl("forms", "submissions", &Index::Single("formId".into())).unwrap();
    assert!(name.starts_with("idx_forms_submissions_formId_"), "{name}");
    assert_eq!(name.len(), "idx_forms_submissions_formId_".len() + 8);
    assert_eq!(
        sql,
        format!(
            "CREATE INDEX IF NOT EXISTS \"{name}\" ON _plugin_storage(user_id, json_extract(data, '$.formId'), id) WHERE plugin_id = 'forms' AND collection = 'submissions'"
        )
    );
    let (_, sql) = index_ddl(
        "my-plugin.v2",
        "c",
        &Index::Composite(vec!["a.b".into(), "c".into()]),
    )
    .unwrap();
    assert!(
        sql.contains("(user_id, json_extract(data, '$.a.b'), json_extract(data, '$.c'), id)"),
        "{sql}"
    );
    assert!(sql.contains("plugin_id = 'my-plugin.v2'"));
    for bad in ["a'b", "__proto__", "$"] {
        assert!(index_ddl("forms", "c", &Index::Single(bad.into())).is_err());
        assert!(index_ddl(
            "forms",
            "c",
            &Index::Composite(vec!["a".into(), bad.into()])
        )
        .is_err());
        assert!(index_ddl(bad, "c", &Index::Single("a".into())).is_err());
        assert!(index_ddl("forms", bad, &Index::Single("a".into())).is_err());
    }
    assert!(index_ddl("forms", "c", &Index::Composite(vec![])).is_err());
    // Same readable part, different identifiers: different names.
    let a = index_ddl("a_b", "c", &Index::Single("x".into())).unwrap().0;
    let b = index_ddl("a", "b_c", &Index::Single("x".into())).unwrap().0;
    let c = index_ddl("a.b", "c", &Index::Single("x".into())).unwrap().0;
    assert!(a != b && a != c && b != c);
}

#[test]
fn prefix_successor_is_the_tightest_upper_bound() {
    assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
    assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_successor("\u{10FFFF}"), None);
    assert_eq!(prefix_successor(""), None);
    assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
}

#[test]
fn fingerprint_covers_scope_filters_and_order_but_not_limit() {
    let d = seed_decl();
    let fp = |plugin: &str, user: &str, q: Value| {
        query_fingerprint(plugin, "c", user, &check(q, &d).unwrap())
    };
    let base = fp(
        "forms",
        "u",
        json!({"where": {"formId": "a"}, "orderBy": {"createdAt": "asc"}}),
    );
    assert_eq!(
        base,
        fp(
            "forms",
            "u",
            json!({"where": {"formId": "a"}, "orderBy": {"createdAt": "asc"}, "limit": 7})
        )
    );
    for other in [
        fp(
            "forms2",
            "u",
            json!({"where": {"formId": "a"}, "orderBy": {"createdAt": "asc"}}),
        ),
        fp(
            "forms",
            "v",
            json!({"where": {"formId": "a"}, "orderBy": {"createdAt": "asc"}}),
        ),
        fp(
            "forms",
            "u",
            json!({"where": {"formId": "b"}, "orderBy": {"createdAt": "asc"}}),
        ),
        fp(
            "forms",
            "u",
            json!({"where": {"formId": "a"}, "orderBy": {"createdAt": "desc"}}),
        ),
        fp(
            "forms",
            "u",
            json!({"where": {"formId": {"in": ["a"]}}, "orderBy": {"createdAt": "asc"}}),
        ),
    ] {
        assert_ne!(base, other);
    }
}

#[test]
fn plan_debug_hides_the_secret() {
    let q = check(json!({}), &seed_decl()).unwrap();
    let plan = plan_query("forms", "c", "u", &q, b"super-secret-value").unwrap();
    assert!(!format!("{plan:?}").contains("super-secret"));
}

#[test]
fn finish_pages_and_signs() {
    let q = check(
        json!({"orderBy": {"createdAt": "asc"}, "limit": 2}),
        &seed_decl(),
    )
    .unwrap();
    let plan = plan_query("forms", "c", "u", &q, b"k").unwrap();
    let row = |id: &str, k: SqlValue| PlanRow {
        id: id.into(),
        data: json!({"id": id}),
        sort_key: k,
    };
    let page = plan
        .finish(vec![
            row("a", SqlValue::Integer(1)),
            row("b", SqlValue::Null),
        ])
        .unwrap();
    assert!(!page.has_more && page.cursor.is_none() && page.items.len() == 2);
    let page = plan
        .finish(vec![
            row("a", SqlValue::Integer(1)),
            row("b", SqlValue::Text("x".into())),
            row("c", SqlValue::Null),
        ])
        .unwrap();
    assert!(page.has_more);
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let c = cursor::decode(page.cursor.as_deref().unwrap(), b"k", &plan.fingerprint).unwrap();
    assert_eq!(
        (c.sort_key, c.last_id.as_str()),
        (Some(SqlValue::Text("x".into())), "b")
    );
    assert!(plan.finish(vec![]).unwrap().items.is_empty());
    // A sort key too long to carry in a cursor is a clear error, not a broken next page.
    let long = SqlValue::Text("x".repeat(cursor::MAX_CURSOR_LEN));
    let e = plan
        .finish(vec![
            row("a", long.clone()),
            row("b", long.clone()),
            row("c", long),
        ])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
}
