//! The manifest's count and length limits: exactly at each passes, one past fails, and a
//! problem list is bounded.

use super::*;

#[test]
fn limits_on_counts() {
    let many: Vec<Value> = (0..=MAX_INDEXES).map(|i| json!(format!("f{i}"))).collect();
    assert_eq!(
        paths(json!({"id": "x", "storage": {"c": {"indexes": many}}})),
        ["$.storage.c.indexes"]
    );
    let mut storage = Map::new();
    for i in 0..=MAX_COLLECTIONS {
        storage.insert(format!("c{i}"), json!({}));
    }
    assert_eq!(paths(json!({"id": "x", "storage": storage})), ["$.storage"]);
    let bindings: Vec<Value> = (0..=MAX_BINDINGS)
        .map(|i| json!({"key": format!("k{i}"), "backend": "d1-json", "schemaId": "s", "schemaVersion": 1}))
        .collect();
    assert_eq!(paths(dynamic(json!(bindings))), ["$.storage.bindings"]);
}

#[test]
fn counts_exactly_at_their_limits_pass() {
    // README, Limits: 16 bindings, 32 collections, 16 indexes per collection, composites
    // up to 4 fields (and field paths up to 4 segments).
    assert_eq!(
        (
            MAX_BINDINGS,
            MAX_COLLECTIONS,
            MAX_INDEXES,
            MAX_COMPOSITE_FIELDS
        ),
        (16, 32, 16, 4)
    );
    assert_eq!(MAX_FIELD_SEGMENTS, 4);
    let indexes: Vec<Value> = (0..MAX_INDEXES).map(|i| json!(format!("f{i}"))).collect();
    let mut storage = Map::new();
    for i in 0..MAX_COLLECTIONS {
        storage.insert(format!("c{i}"), json!({ "indexes": indexes }));
    }
    let m = Manifest::parse(&json!({"id": "x", "storage": storage})).unwrap();
    assert_eq!(m.collections.len(), MAX_COLLECTIONS);
    assert!(m
        .collections
        .values()
        .all(|c| c.indexes.len() == MAX_INDEXES));
    let bindings: Vec<Value> = (0..MAX_BINDINGS)
        .map(|i| json!({"key": format!("k{i}"), "backend": "d1-json", "schemaId": "s", "schemaVersion": 1}))
        .collect();
    assert_eq!(
        Manifest::parse(&dynamic(json!(bindings)))
            .unwrap()
            .bindings
            .len(),
        MAX_BINDINGS
    );
    let widest: Vec<String> = (0..MAX_COMPOSITE_FIELDS).map(|i| format!("f{i}")).collect();
    let deepest = ["a"; MAX_FIELD_SEGMENTS].join(".");
    let m = Manifest::parse(&json!({"id": "x", "storage": {"c": {"indexes": [widest, deepest]}}}));
    assert!(m.is_ok());
    let too_deep = ["a"; MAX_FIELD_SEGMENTS + 1].join(".");
    assert_eq!(
        paths(json!({"id": "x", "storage": {"c": {"indexes": [too_deep]}}})),
        ["$.storage.c.indexes[0]"]
    );
}

#[test]
fn a_label_of_exactly_200_characters_passes() {
    assert_eq!(MAX_LABEL_CHARS, 200);
    let labelled = |label: String| {
        let mut b = notes();
        b["label"] = json!(label);
        dynamic(json!([b]))
    };
    // Characters, not bytes: 200 two-byte characters pass.
    assert!(Manifest::parse(&labelled("é".repeat(MAX_LABEL_CHARS))).is_ok());
    assert_eq!(
        paths(labelled("é".repeat(MAX_LABEL_CHARS + 1))),
        ["$.storage.bindings[0].label"]
    );
}

#[test]
fn problem_lists_are_bounded() {
    let many: Vec<Value> = (0..100_000).map(|_| json!("a'b")).collect();
    let got = paths(json!({"id": "x", "storage": {"c": {"indexes": many}}}));
    assert_eq!(got.len(), MAX_PROBLEMS + 1);
    assert_eq!(got[0], "$.storage.c.indexes");
    assert_eq!(got[MAX_PROBLEMS], "$");
}
