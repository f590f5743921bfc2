//! Plugin collections as both backends store them: a declaration read back from its stored
//! JSON (`plugin_collections.indexes`), and the one UNDECLARED_COLLECTION answer for a
//! collection the plugin does not declare.

use monodit_core::manifest::{CollectionDecl, Index};
use monodit_core::{Error, ErrorCode};
use serde_json::{json, Value};

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
