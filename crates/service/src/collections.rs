//! Plugin collections as both backends store and receive them: a declaration read back from
//! its stored JSON (`plugin_collections.indexes`), the one UNDECLARED_COLLECTION answer for a
//! collection the plugin does not declare, and a collection op read from its route and body.

use monodit_core::api::CollectionOp;
use monodit_core::manifest::{CollectionDecl, Index};
use monodit_core::ops::CollectionMethod;
use monodit_core::query;
use monodit_core::{Error, ErrorCode};
use serde_json::{json, Map, Value};

/// A stored declaration (`plugin_collections.indexes`: a JSON array of field names and arrays
/// of field names); unreadable entries are skipped (they were valid when stored).
pub fn decl_from_json(text: &str) -> CollectionDecl {
    let raw: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
    let indexes = raw
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(Index::Single(s)),
            Value::Array(a) => Some(Index::Composite(
                a.into_iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    CollectionDecl { indexes }
}

/// UNDECLARED_COLLECTION for `collection` of `plugin_id`, with `{pluginId, collection}`.
pub fn undeclared(plugin_id: &str, collection: &str) -> Error {
    Error::new(
        ErrorCode::UndeclaredCollection,
        format!("plugin {plugin_id:?} declares no collection {collection:?}"),
    )
    .with_detail(json!({"pluginId": plugin_id, "collection": collection}))
}

/// A request body read as the op the path names: `{...args}` or `{"op": name, ...args}`. The
/// path's op wins; a body naming another op, a body that is not an object, an unknown op or
/// bad arguments are INVALID_ARGUMENT.
pub fn parse_op(path_op: &str, body: Value) -> Result<CollectionOp, Error> {
    let method = CollectionMethod::parse(path_op).ok_or_else(|| {
        Error::invalid(format!(
            "unknown collection op {path_op:?}; expected one of {}",
            CollectionMethod::names()
        ))
    })?;
    let mut obj = match body {
        Value::Object(o) => o,
        Value::Null => Map::new(),
        _ => return Err(Error::invalid("the body must be a JSON object")),
    };
    match obj.get("op") {
        None => {
            obj.insert("op".into(), Value::String(path_op.into()));
        }
        Some(Value::String(s)) if s == path_op => {}
        Some(_) => return Err(Error::invalid("body op does not match the path's op")),
    }
    if method == CollectionMethod::Query {
        // Core's reader names unknown keys (a typo like `orderby` would otherwise be ignored).
        obj.remove("op");
        return query::QueryOptions::from_json(&Value::Object(obj)).map(CollectionOp::Query);
    }
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| Error::invalid(format!("invalid {path_op} arguments: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_declarations_read_back_and_skip_what_is_not_an_index() {
        let d = decl_from_json(r#"["status", ["status", "createdAt"], 7, ["a", 1, "b"]]"#);
        assert_eq!(
            d.indexes,
            [
                Index::Single("status".into()),
                Index::Composite(vec!["status".into(), "createdAt".into()]),
                Index::Composite(vec!["a".into(), "b".into()]),
            ]
        );
        assert!(decl_from_json("not json").indexes.is_empty());
    }

    #[test]
    fn ops_are_read_from_the_path_and_body() {
        let op = parse_op("get", json!({"id": "a"})).unwrap();
        assert_eq!(op, CollectionOp::Get { id: "a".into() });
        let same = parse_op("get", json!({"op": "get", "id": "a"})).unwrap();
        assert_eq!(same, op);
        // No body at all is an op without arguments.
        assert_eq!(
            parse_op("count", Value::Null).unwrap().method(),
            CollectionMethod::Count
        );
        let bad = [
            ("nope", json!({})),
            ("get", json!({"op": "put", "id": "a"})),
            ("get", json!([1])),
            ("get", json!({})),
            ("query", json!({"orderby": "x"})),
        ];
        for (path, body) in bad {
            let e = parse_op(path, body.clone()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{path} {body}");
        }
        assert!(parse_op("nope", json!({}))
            .unwrap_err()
            .message
            .contains(&CollectionMethod::names()));
    }

    #[test]
    fn undeclared_names_the_plugin_and_collection() {
        let e = undeclared("notes", "comments");
        assert_eq!(e.code, ErrorCode::UndeclaredCollection);
        assert_eq!(
            e.detail,
            Some(json!({"pluginId": "notes", "collection": "comments"}))
        );
        assert!(e.message.contains("\"comments\""));
    }
}
