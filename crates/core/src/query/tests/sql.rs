//! The SQL planner: parameterised statements, index DDL, the fingerprint a cursor is bound
//! to, pages and their signed cursors, and the integers it refuses.

use super::super::sql::{check_params, prefix_successor};
use super::*;
use crate::manifest::Index;

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
fn plan_debug_shows_the_statement_and_its_parameters() {
    let q = check(json!({"where": {"formId": "contact"}}), &seed_decl()).unwrap();
    let plan = plan_query("forms", "c", "u", &q, b"k").unwrap();
    let shown = format!("{plan:?}");
    assert!(shown.starts_with("SqlPlan {"), "{shown}");
    assert!(shown.contains(&format!("{:?}", plan.sql)), "{shown}");
    assert!(shown.contains("contact"), "{shown}");
    assert!(shown.ends_with(", .. }"), "{shown}");
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

#[test]
fn at_most_max_params_values_are_bound() {
    // MAX_PARAMS is D1's bound on parameters per statement: exactly that many still pass.
    let at: Vec<SqlValue> = (0..MAX_PARAMS as i64).map(SqlValue::Integer).collect();
    assert!(check_params(&at).is_ok());
    let past: Vec<SqlValue> = (0..=MAX_PARAMS as i64).map(SqlValue::Integer).collect();
    assert_eq!(
        check_params(&past).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}

#[test]
fn the_planner_refuses_a_limit_out_of_range_even_if_not_validated() {
    let q = check(json!({}), &seed_decl()).unwrap();
    for limit in [0, MAX_LIMIT + 1] {
        let bad = ValidatedQuery { limit, ..q.clone() };
        let e = plan_query("forms", "c", "u", &bad, b"k").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{limit}");
    }
    for limit in [1, MAX_LIMIT] {
        let ok = ValidatedQuery { limit, ..q.clone() };
        assert!(plan_query("forms", "c", "u", &ok, b"k").is_ok(), "{limit}");
    }
}

#[test]
fn a_cursor_of_exactly_the_longest_length_is_given_one_character_more_is_an_error() {
    let max = cursor::MAX_CURSOR_LEN;
    let q = check(
        json!({"orderBy": {"createdAt": "asc"}, "limit": 1}),
        &seed_decl(),
    )
    .unwrap();
    let plan = plan_query("forms", "c", "u", &q, b"k").unwrap();
    let key = |n: usize| SqlValue::Text("x".repeat(n));
    let encoded_len = |n: usize| {
        let payload = cursor::CursorPayload {
            fingerprint: plan.fingerprint,
            sort_key: Some(key(n)),
            last_id: "a".into(),
        };
        cursor::encode(&payload, b"k").len()
    };
    // The cursor grows with the sort key: find the key whose cursor is exactly `max` long.
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if encoded_len(mid) < max {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    assert_eq!(
        encoded_len(lo),
        max,
        "some sort key gives a cursor of exactly max"
    );
    let page = |n: usize| {
        let row = |id: &str, key: SqlValue| PlanRow {
            id: id.into(),
            data: json!({}),
            sort_key: key,
        };
        plan.finish(vec![row("a", key(n)), row("b", key(0))])
    };
    assert_eq!(page(lo).unwrap().cursor.map(|c| c.len()), Some(max));
    assert_eq!(page(lo + 1).unwrap_err().code, ErrorCode::InvalidArgument);
}
