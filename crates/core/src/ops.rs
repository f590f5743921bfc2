//! The collection ops of `ctx.storage.<name>`: their names and whether they only read.
//!
//! One definition for every side that spells them: the widget's collection facade and the
//! port's `storage.<method>` ops (`src/protocol.rs`, `src/widget/storage.rs`), the host's
//! HTTP client (`src/http/plugins.rs`) and the server's `POST
//! /v1/collections/{pluginId}/{collection}/{op}` (`server/src/store/collections.rs`). The op
//! name in that path is the JS method name and the `op` tag of [`CollectionOp`]'s JSON.
//! Each op's answer has its type here too ([`GetResult`], ...; `query` answers
//! [`crate::api::QueryResult`]), so the server writes what the host reads.

use crate::api::CollectionOp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The nine methods of a `ctx.storage.<name>` collection (README, For widget authors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionMethod {
    /// `get(id)` → the item's data or `null`.
    Get,
    /// `put(id, data)`.
    Put,
    /// `delete(id)` → whether it existed.
    Delete,
    /// `exists(id)`.
    Exists,
    /// `getMany(ids)` → the items found.
    GetMany,
    /// `putMany(items)`, one transaction.
    PutMany,
    /// `deleteMany(ids)` → how many existed, one transaction.
    DeleteMany,
    /// `query(options)` → one page.
    Query,
    /// `count(where?)`.
    Count,
}

impl CollectionMethod {
    /// Every method, in the README's order (for building collection facades and tests).
    pub const ALL: [CollectionMethod; 9] = [
        CollectionMethod::Get,
        CollectionMethod::Put,
        CollectionMethod::Delete,
        CollectionMethod::Exists,
        CollectionMethod::GetMany,
        CollectionMethod::PutMany,
        CollectionMethod::DeleteMany,
        CollectionMethod::Query,
        CollectionMethod::Count,
    ];

    /// The JS method name, which is also the HTTP op name and the JSON `op` tag.
    pub const fn as_str(self) -> &'static str {
        match self {
            CollectionMethod::Get => "get",
            CollectionMethod::Put => "put",
            CollectionMethod::Delete => "delete",
            CollectionMethod::Exists => "exists",
            CollectionMethod::GetMany => "getMany",
            CollectionMethod::PutMany => "putMany",
            CollectionMethod::DeleteMany => "deleteMany",
            CollectionMethod::Query => "query",
            CollectionMethod::Count => "count",
        }
    }

    /// The port op a widget sends for this method: `storage.<method>` (`src/protocol.rs`).
    pub const fn port_op(self) -> &'static str {
        match self {
            CollectionMethod::Get => "storage.get",
            CollectionMethod::Put => "storage.put",
            CollectionMethod::Delete => "storage.delete",
            CollectionMethod::Exists => "storage.exists",
            CollectionMethod::GetMany => "storage.getMany",
            CollectionMethod::PutMany => "storage.putMany",
            CollectionMethod::DeleteMany => "storage.deleteMany",
            CollectionMethod::Query => "storage.query",
            CollectionMethod::Count => "storage.count",
        }
    }

    /// The method named `s` (exact spelling, as [`CollectionMethod::as_str`] gives it).
    pub fn parse(s: &str) -> Option<CollectionMethod> {
        CollectionMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the method only reads: the server runs it on a reader connection, never
    /// holding the writer (`server/src/http/collections.rs`).
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            CollectionMethod::Get
                | CollectionMethod::Exists
                | CollectionMethod::GetMany
                | CollectionMethod::Query
                | CollectionMethod::Count
        )
    }

    /// The method names joined by ", " (for an error that lists what is accepted).
    pub fn names() -> String {
        CollectionMethod::ALL
            .map(CollectionMethod::as_str)
            .join(", ")
    }
}

impl CollectionOp {
    /// Which method this op is.
    pub const fn method(&self) -> CollectionMethod {
        match self {
            CollectionOp::Get { .. } => CollectionMethod::Get,
            CollectionOp::Put { .. } => CollectionMethod::Put,
            CollectionOp::Delete { .. } => CollectionMethod::Delete,
            CollectionOp::Exists { .. } => CollectionMethod::Exists,
            CollectionOp::GetMany { .. } => CollectionMethod::GetMany,
            CollectionOp::PutMany { .. } => CollectionMethod::PutMany,
            CollectionOp::DeleteMany { .. } => CollectionMethod::DeleteMany,
            CollectionOp::Query(_) => CollectionMethod::Query,
            CollectionOp::Count { .. } => CollectionMethod::Count,
        }
    }
}

/// `get` → `{item}`: the item's data, `null` when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetResult {
    /// The data, or `None` (JSON `null`).
    pub item: Option<Value>,
}

/// `put` and `putMany` → `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Written {}

/// `delete` → `{deleted}`: whether the item existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// Whether the item existed.
    pub deleted: bool,
}

/// `exists` → `{exists}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistsResult {
    /// Whether the item exists.
    pub exists: bool,
}

/// `getMany` → `{items: {id: data}}`: the ids found (missing ids are absent).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GetManyResult {
    /// Found id → data.
    pub items: Map<String, Value>,
}

/// `deleteMany` → `{deleted}`: how many of the ids existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteManyResult {
    /// How many items existed.
    pub deleted: u64,
}

/// `count` → `{count}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountResult {
    /// How many items match.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CollectionItem;
    use crate::query::QueryOptions;
    use serde_json::json;

    fn one_of_each() -> [CollectionOp; 9] {
        [
            CollectionOp::Get { id: "a".into() },
            CollectionOp::Put {
                id: "a".into(),
                data: json!(1),
            },
            CollectionOp::Delete { id: "a".into() },
            CollectionOp::Exists { id: "a".into() },
            CollectionOp::GetMany { ids: vec![] },
            CollectionOp::PutMany {
                items: vec![CollectionItem {
                    id: "a".into(),
                    data: json!(1),
                }],
            },
            CollectionOp::DeleteMany { ids: vec![] },
            CollectionOp::Query(QueryOptions::default()),
            CollectionOp::Count { where_: None },
        ]
    }

    /// The name is the `op` tag serde writes, so the path and the body always agree.
    #[test]
    fn names_are_the_json_op_tags_in_order() {
        for (op, m) in one_of_each().iter().zip(CollectionMethod::ALL) {
            assert_eq!(op.method(), m);
            assert_eq!(serde_json::to_value(op).unwrap()["op"], m.as_str());
            assert_eq!(m.port_op(), format!("storage.{}", m.as_str()));
            assert_eq!(CollectionMethod::parse(m.as_str()), Some(m));
        }
        let names: std::collections::HashSet<_> =
            CollectionMethod::ALL.map(CollectionMethod::as_str).into();
        assert_eq!(names.len(), 9);
        assert_eq!(
            CollectionMethod::names(),
            "get, put, delete, exists, getMany, putMany, deleteMany, query, count"
        );
    }

    /// The answers' JSON, as the host reads it (`src/host/plugins.rs`).
    #[test]
    fn results_have_their_wire_shapes() {
        fn v(r: impl Serialize) -> Value {
            serde_json::to_value(r).unwrap()
        }
        assert_eq!(v(GetResult { item: None }), json!({"item": null}));
        assert_eq!(
            v(GetResult {
                item: Some(json!({"a": 1}))
            }),
            json!({"item": {"a": 1}})
        );
        assert_eq!(v(Written {}), json!({}));
        assert_eq!(v(DeleteResult { deleted: true }), json!({"deleted": true}));
        assert_eq!(v(ExistsResult { exists: false }), json!({"exists": false}));
        let mut items = Map::new();
        items.insert("x".into(), json!(2));
        assert_eq!(v(GetManyResult { items }), json!({"items": {"x": 2}}));
        assert_eq!(v(DeleteManyResult { deleted: 3 }), json!({"deleted": 3}));
        assert_eq!(v(CountResult { count: 26 }), json!({"count": 26}));
        let back: GetResult = serde_json::from_value(json!({"item": null})).unwrap();
        assert_eq!(back, GetResult { item: None });
    }

    #[test]
    fn parse_is_exact() {
        for s in ["", "Get", "getmany", "storage.get", "get ", "toString"] {
            assert_eq!(CollectionMethod::parse(s), None, "{s:?}");
        }
    }

    /// Writes hold the server's writer; a read misclassified as a write only costs
    /// throughput, a write misclassified as a read would fail on a read-only connection.
    #[test]
    fn reads_and_writes() {
        let reads: Vec<_> = CollectionMethod::ALL
            .into_iter()
            .filter(|m| m.is_read())
            .map(CollectionMethod::as_str)
            .collect();
        assert_eq!(reads, ["get", "exists", "getMany", "query", "count"]);
    }
}
