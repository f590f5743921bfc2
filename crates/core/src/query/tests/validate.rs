//! Query options and filters validated against the declared indexes: the seed's index
//! table and examples, operators, hostile and malformed input with every problem's path,
//! limits, and the wire shape.

use super::*;

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
fn options_from_json_says_what_each_option_must_be() {
    let message = |q: Value| {
        let detail = QueryOptions::from_json(&q).unwrap_err().detail.unwrap();
        let [p] = &detail.as_array().unwrap()[..] else {
            panic!("one problem for {q}")
        };
        (
            p["path"].as_str().unwrap().to_string(),
            p["message"].as_str().unwrap().to_string(),
        )
    };
    for (q, path, want) in [
        (
            json!({"where": 5}),
            "$.where",
            "where must be an object, found a number",
        ),
        (
            json!({"limit": "5"}),
            "$.limit",
            "limit must be a number, found a string",
        ),
        (
            json!({"cursor": 5}),
            "$.cursor",
            "cursor must be a string, found a number",
        ),
        (
            json!({"limit": -1}),
            "$.limit",
            "limit must be an integer from 1 to 1000, found -1",
        ),
        // null means "not given" only for the four options: a typo is still a typo.
        (
            json!({"orderby": null}),
            "$.orderby",
            "unknown query option (expected where, orderBy, limit, cursor)",
        ),
    ] {
        assert_eq!(message(q), (path.to_string(), want.to_string()));
    }
}

#[test]
fn a_long_problem_list_ends_with_one_line_saying_more_were_cut() {
    let max = crate::manifest::MAX_PROBLEMS;
    let mut w = serde_json::Map::new();
    for i in 0..=max {
        w.insert(format!("bad'{i:04}"), json!(1));
    }
    let e = check(json!({ "where": w }), &seed_decl()).unwrap_err();
    let detail = e.detail.unwrap();
    let problems = detail.as_array().unwrap();
    assert_eq!(problems.len(), max + 1);
    assert!(problems[..max].iter().all(|p| p["path"] != "$"));
    assert_eq!(
        problems[max],
        json!({"path": "$", "message": format!("more problems not shown (the first {max} are listed)")})
    );
    // Exactly max problems are all listed, with no such line.
    w.remove(&format!("bad'{max:04}"));
    let e = check(json!({ "where": w }), &seed_decl()).unwrap_err();
    let detail = e.detail.unwrap();
    assert_eq!(detail.as_array().unwrap().len(), max);
    assert!(detail.as_array().unwrap().iter().all(|p| p["path"] != "$"));
}

#[test]
fn the_documented_query_limits() {
    // README, Limits: limit 1-1,000 (default 50), `in` up to 50 values, strings up to 4 KiB;
    // README, the Worker: a page stops at 8 MiB of items; MAX_PARAMS is D1's parameter bound.
    assert_eq!(DEFAULT_LIMIT, 50);
    assert_eq!(MAX_LIMIT, 1000);
    assert_eq!(MAX_IN_VALUES, 50);
    assert_eq!(MAX_WHERE_STRING_BYTES, 4096);
    assert_eq!(MAX_PAGE_BYTES, 8_388_608);
    assert_eq!(MAX_PARAMS, 100);
    assert_eq!(EXACT_INTEGER_LIMIT, 9_007_199_254_740_992);
}

#[test]
fn a_cursor_string_is_checked_for_length_up_to_its_bound_exactly() {
    let max = crate::cursor::MAX_CURSOR_LEN;
    // Any non-empty string up to the bound passes validation (planning verifies it).
    assert!(check(json!({ "cursor": "c".repeat(max) }), &seed_decl()).is_ok());
    for bad in [String::new(), "c".repeat(max + 1)] {
        assert_eq!(
            invalid_paths(json!({ "cursor": bad })),
            ["$.cursor"],
            "{}",
            bad.len()
        );
    }
}

#[test]
fn a_where_string_of_exactly_the_longest_length_passes() {
    let at = "x".repeat(MAX_WHERE_STRING_BYTES);
    assert!(check(json!({"where": {"formId": at}}), &seed_decl()).is_ok());
    assert!(check(
        json!({"where": {"formId": {"startsWith": at}}}),
        &seed_decl()
    )
    .is_ok());
    let past = "x".repeat(MAX_WHERE_STRING_BYTES + 1);
    assert_eq!(
        invalid_paths(json!({"where": {"formId": past}})),
        ["$.where.formId"]
    );
}
