//! Query validation against declared indexes (`validate.rs`), the SQL planner's statements
//! and cursors (`sql.rs`); the helpers both use are here.

use super::*;
use serde_json::json;

mod sql;
mod validate;

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
