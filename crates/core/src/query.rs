//! The collection query model of seed 003 (placeholder: filled in by the core rules work).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `where` clause: field → condition.
pub type WhereClause = BTreeMap<String, serde_json::Value>;

/// Seed 003's `QueryOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOptions {
    /// Filter.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<WhereClause>,
    /// Order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<serde_json::Value>,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}
