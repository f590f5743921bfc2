//! The collection query model (`ctx.storage.<name>.query`; README, For widget authors and
//! Limits): validation against declared indexes and the SQL planner for SQLite / libSQL / D1
//! over the `_plugin_storage` table.
//!
//! # Query model
//! - `where`: field → exact value (string, number or boolean), or an operator object:
//!   `{"in": [..]}`, `{"startsWith": "pre"}`, or range bounds (`gt` or `gte`, and/or `lt` or
//!   `lte`). An operator object holds `in` alone, `startsWith` alone, or at most one lower and
//!   one upper bound. Range values are all strings or all numbers. `in` holds at most
//!   [`MAX_IN_VALUES`] values of one kind (all strings, all numbers or all booleans); an empty
//!   `in` matches nothing. `null`, arrays and nested objects as values are rejected. Strings in
//!   `where` are at most [`MAX_WHERE_STRING_BYTES`] bytes and contain no NUL.
//! - `orderBy`: `{field: "asc" | "desc"}` with **one** field (`{}` means unordered). One field
//!   is all an index can serve (see the rule below), and JSON object key order is not
//!   something every client preserves, so several keys are rejected rather than guessed.
//! - `limit`: default [`DEFAULT_LIMIT`], `1..=`[`MAX_LIMIT`]; 0 or more than 1000 is
//!   `INVALID_ARGUMENT` (rejected, not clamped: a silent clamp hides a bug, and 0 would make a
//!   drain loop spin).
//! - `cursor`: an opaque string from the previous page (see [`crate::cursor`]).
//!
//! # Which indexes support a query (`NOT_INDEXED` otherwise)
//! A composite index supports queries that filter on its first field and optionally order by
//! the second. Generalised as the usual leftmost-prefix rule:
//! - a filtered field `f` is supported by a single index `"f"`, or by a composite index that
//!   has `f` at position k where every field before k has an exact or `in` filter;
//! - the `orderBy` field is supported under the same rule;
//! - each filtered field and the order field must be supported by some declared index
//!   (different fields may use different indexes: "status" and "formId" separately). So with
//!   only `["formId","createdAt"]`, a range on `createdAt` alone is `NOT_INDEXED` (the filter
//!   starts at the wrong field).
//!
//! # SQL
//! Table ([`CREATE_TABLE_SQL`]): one `_plugin_storage` table for every plugin and collection,
//! with `user_id`, which every statement scopes by. Index DDL ([`index_ddl`]) is a partial
//! expression index per declared index, led by `user_id` and ended by `id`, so one user's rows
//! are contiguous and keyset pages read the index in order:
//! `CREATE INDEX IF NOT EXISTS "idx_forms_submissions_formId_…" ON _plugin_storage(user_id,
//! json_extract(data, '$.formId'), id) WHERE plugin_id = 'forms' AND collection = 'submissions'`.
//! Queries use the textually identical expression `json_extract(data, '$.formId')`. Only
//! grammar-checked identifiers (field paths, and in DDL the plugin id and collection name)
//! appear in SQL text; every value, including plugin id and collection in queries, is a
//! numbered parameter (`?1`, `?2`, ...) in [`SqlValue`]s. SQLite still matches the partial
//! index because it compares bound values against the index's `WHERE` terms when it prepares
//! the statement (tests assert this with `EXPLAIN QUERY PLAN`).
//!
//! # Types and ordering
//! `json_extract` yields SQL NULL for a missing field or JSON `null`, INTEGER or REAL for
//! numbers, INTEGER 1/0 for `true`/`false`, TEXT for strings, and the JSON text of objects and
//! arrays. Bound parameters and these expressions have no affinity, so SQLite compares them
//! without conversion: the string `"5"` never equals the number `5`. To make every filter
//! exact, each condition also checks `json_type(data, '$.f')`: strings only match strings,
//! numbers only numbers (not booleans), booleans only booleans, and objects/arrays never match.
//! Range bounds are closed off by type (`< ''` above numbers, `>= ''` below strings) so an
//! index range never wanders into another type. Numbers above `i64::MAX` are compared as
//! REAL, as SQLite's JSON parser stores them.
//!
//! `orderBy` sorts by SQLite's order: missing/null first, then numbers (booleans as 0/1),
//! then strings and the JSON text of objects/arrays by bytes (UTF-8 code point order);
//! `desc` is the exact reverse. Items missing the field are included (first in `asc`, last in
//! `desc`). Ties are broken by `id` in the same direction; without `orderBy` items come by `id`
//! ascending. Pages are keyset pages: a cursor records the last item's (sort key, id), and the
//! next page starts strictly after it, so inserts and deletes between pages never repeat or
//! skip an item that existed throughout the walk.

use crate::api::{CollectionItem, QueryResult};
use crate::cursor::{self, CursorPayload, QueryFingerprint};
use crate::errors::{Error, ErrorCode};
use crate::manifest::{
    is_valid_collection_name, is_valid_field_path, is_valid_widget_id, shown, CollectionDecl,
    Index, Manifest,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod sql;

pub use sql::*;

/// `where` clause: field → condition, as sent by the widget (validated by [`validate`]).
pub type WhereClause = BTreeMap<String, serde_json::Value>;

/// The options of `query()`, as sent by the widget (validated by [`validate`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOptions {
    /// Filter.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<WhereClause>,
    /// Order: `{field: "asc" | "desc"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<serde_json::Value>,
    /// Page size (default 50, max 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl QueryOptions {
    /// Reads query options from JSON with clear errors: unknown keys (a typo such as
    /// `orderby` would otherwise be ignored silently), a non-object `where`, or a `limit` that
    /// is not an integer in `0..=4294967295` are `INVALID_ARGUMENT` with their paths in
    /// `detail`. `null` or absent means "not given". Ranges and indexes are checked by
    /// [`validate`].
    pub fn from_json(value: &Value) -> Result<QueryOptions, Error> {
        let mut p = Problems(Vec::new());
        let mut out = QueryOptions::default();
        let Some(obj) = value.as_object() else {
            if value.is_null() {
                return Ok(out);
            }
            p.push(
                "$".into(),
                format!(
                    "query options must be an object, found {}",
                    json_kind(value)
                ),
            );
            p.into_result()?;
            return Ok(out);
        };
        for (k, v) in obj {
            let path = crate::manifest::path_key("$", k);
            match (k.as_str(), v) {
                (_, Value::Null)
                    if matches!(k.as_str(), "where" | "orderBy" | "limit" | "cursor") => {}
                ("where", Value::Object(m)) => {
                    out.where_ = Some(m.iter().map(|(f, c)| (f.clone(), c.clone())).collect())
                }
                ("where", other) => p.push(
                    path,
                    format!("where must be an object, found {}", json_kind(other)),
                ),
                ("orderBy", v) => out.order_by = Some(v.clone()),
                ("limit", Value::Number(n)) => match n.as_u64().and_then(|l| u32::try_from(l).ok())
                {
                    Some(l) => out.limit = Some(l),
                    None => p.push(
                        path,
                        format!("limit must be an integer from 1 to {MAX_LIMIT}, found {n}"),
                    ),
                },
                ("limit", other) => p.push(
                    path,
                    format!("limit must be a number, found {}", json_kind(other)),
                ),
                ("cursor", Value::String(c)) => out.cursor = Some(c.clone()),
                ("cursor", other) => p.push(
                    path,
                    format!("cursor must be a string, found {}", json_kind(other)),
                ),
                _ => p.push(
                    path,
                    "unknown query option (expected where, orderBy, limit, cursor)".into(),
                ),
            }
        }
        p.into_result()?;
        Ok(out)
    }
}

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// Most values in one `in` list.
pub const MAX_IN_VALUES: usize = 50;
/// Longest string value in a `where` clause, in bytes.
pub const MAX_WHERE_STRING_BYTES: usize = 4096;
/// Most bound parameters in one statement (Cloudflare D1's limit).
pub const MAX_PARAMS: usize = 100;
/// Most bytes of item data (JSON text) one query page carries: 1000 items of 1 MiB would not
/// fit a Worker isolate's 128 MB. The first item always comes; the page stops (with `hasMore`
/// and a cursor) before the item that would pass the cap. Applied in the SQL, so the items
/// past it are never read into memory.
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Integers in a `where` value or an `orderBy` value a cursor carries must be smaller than
/// this in magnitude (2^53): D1 binds and returns numbers as JS doubles, which round past it,
/// so such queries are refused (INVALID_ARGUMENT) on every backend alike. Store them as
/// strings.
pub const EXACT_INTEGER_LIMIT: i64 = 1 << 53;

/// Whether `v` is an integer a double cannot be trusted to hold exactly.
fn inexact_integer(v: &SqlValue) -> bool {
    matches!(v, SqlValue::Integer(i) if i.unsigned_abs() >= EXACT_INTEGER_LIMIT as u64)
}
/// The storage table.
pub const TABLE: &str = "_plugin_storage";

/// The table, with `user_id` in its key. `data` is declared `TEXT` rather than `JSON`:
/// a `JSON` column has NUMERIC affinity, which would turn a top-level number document such as
/// `1e5` into the REAL `100000.0` and change it on the way back.
pub const CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS _plugin_storage (\n  user_id TEXT NOT NULL,\n  plugin_id TEXT NOT NULL,\n  collection TEXT NOT NULL,\n  id TEXT NOT NULL,\n  data TEXT NOT NULL,\n  created_at TEXT,\n  updated_at TEXT,\n  PRIMARY KEY (user_id, plugin_id, collection, id)\n)";

/// A value bound to a statement parameter, or read back from a result column.
/// Adapters bind `Bool` as INTEGER 1/0 (what rusqlite and D1 do with booleans).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// 64-bit integer.
    Integer(i64),
    /// Finite double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Boolean (bind as INTEGER 1/0).
    Bool(bool),
}

/// One bound of a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    /// The bound value (text or number).
    pub value: SqlValue,
    /// `gte`/`lte` rather than `gt`/`lt`.
    pub inclusive: bool,
}

/// A validated condition on one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Condition {
    /// Exact match (text, integer, real or bool).
    Eq(SqlValue),
    /// Any of these values (all of one kind); empty matches nothing.
    In(Vec<SqlValue>),
    /// `gt`/`gte` and/or `lt`/`lte`, values all text or all numbers.
    Range {
        /// Lower bound.
        lower: Option<Bound>,
        /// Upper bound.
        upper: Option<Bound>,
    },
    /// String prefix.
    StartsWith(String),
}

impl Condition {
    /// Whether the condition pins the field to one or a few values (exact or `in`), which
    /// lets the next field of a composite index be used.
    pub fn is_equality(&self) -> bool {
        matches!(self, Condition::Eq(_) | Condition::In(_))
    }
}

/// Validated filters: field → condition.
pub type Filters = BTreeMap<String, Condition>;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Direction {
    fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

/// A validated `orderBy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderBy {
    /// The field.
    pub field: String,
    /// The direction.
    pub direction: Direction,
}

/// A query that passed [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedQuery {
    /// Filters.
    pub filters: Filters,
    /// Order (None: by id).
    pub order_by: Option<OrderBy>,
    /// Page size, 1..=1000.
    pub limit: u32,
    /// The cursor string (verified when planning).
    pub cursor: Option<String>,
}

struct Problems(Vec<Value>);

impl Problems {
    fn push(&mut self, path: String, message: String) {
        // Bounded like manifest problems: hostile input cannot make an enormous error body.
        let max = crate::manifest::MAX_PROBLEMS;
        match self.0.len() {
            n if n < max => self
                .0
                .push(serde_json::json!({ "path": path, "message": message })),
            n if n == max => self.0.push(serde_json::json!({
                "path": "$",
                "message": format!("more problems not shown (the first {max} are listed)")
            })),
            _ => {}
        }
    }
    fn into_result(self) -> Result<(), Error> {
        let Some(first) = self.0.first() else {
            return Ok(());
        };
        let msg = format!(
            "invalid query: {}: {}",
            first["path"].as_str().unwrap_or(""),
            first["message"].as_str().unwrap_or("")
        );
        Err(Error::invalid(msg).with_detail(Value::Array(self.0)))
    }
}

fn scalar(v: &Value) -> Option<SqlValue> {
    match v {
        Value::String(s) => Some(SqlValue::Text(s.clone())),
        Value::Bool(b) => Some(SqlValue::Bool(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(SqlValue::Integer(i))
            } else if let Some(u) = n.as_u64() {
                // Above i64::MAX: SQLite's JSON parser stores such numbers as REAL too.
                Some(SqlValue::Real(u as f64))
            } else {
                n.as_f64().filter(|f| f.is_finite()).map(SqlValue::Real)
            }
        }
        _ => None,
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Text,
    Number,
    Bool,
}

fn kind(v: &SqlValue) -> Option<Kind> {
    match v {
        SqlValue::Text(_) => Some(Kind::Text),
        SqlValue::Integer(_) | SqlValue::Real(_) => Some(Kind::Number),
        SqlValue::Bool(_) => Some(Kind::Bool),
        SqlValue::Null => None,
    }
}

fn check_text(s: &str, path: &str, p: &mut Problems) -> bool {
    if s.len() > MAX_WHERE_STRING_BYTES {
        p.push(
            path.to_string(),
            format!("strings in where are at most {MAX_WHERE_STRING_BYTES} bytes"),
        );
        false
    } else if s.contains('\0') {
        p.push(
            path.to_string(),
            "strings in where must not contain NUL".to_string(),
        );
        false
    } else {
        true
    }
}

fn scalar_at(v: &Value, path: &str, p: &mut Problems) -> Option<SqlValue> {
    match scalar(v) {
        Some(SqlValue::Text(s)) => check_text(&s, path, p).then_some(SqlValue::Text(s)),
        Some(x) => Some(x),
        None => {
            p.push(
                path.to_string(),
                format!(
                    "expected a string, number or boolean, found {}",
                    json_kind(v)
                ),
            );
            None
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array (use {\"in\": [...]})",
        Value::Object(_) => "an object",
    }
}

fn parse_condition(v: &Value, path: &str, p: &mut Problems) -> Option<Condition> {
    let Value::Object(ops) = v else {
        return scalar_at(v, path, p).map(Condition::Eq);
    };
    if ops.is_empty() {
        p.push(
            path.to_string(),
            "empty operator object (use in, gt, gte, lt, lte or startsWith)".to_string(),
        );
        return None;
    }
    let before = p.0.len();
    let mut lower: Option<Bound> = None;
    let mut upper: Option<Bound> = None;
    let mut in_list: Option<Vec<SqlValue>> = None;
    let mut prefix: Option<String> = None;
    for (op, arg) in ops {
        let opath = crate::manifest::path_key(path, op);
        match op.as_str() {
            "in" => {
                let Value::Array(items) = arg else {
                    p.push(
                        opath,
                        format!("in takes an array, found {}", json_kind(arg)),
                    );
                    continue;
                };
                if items.len() > MAX_IN_VALUES {
                    p.push(opath, format!("in takes at most {MAX_IN_VALUES} values"));
                    continue;
                }
                let mut vals = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = scalar_at(item, &format!("{opath}[{i}]"), p) {
                        vals.push(s);
                    }
                }
                let first = vals.first().and_then(kind);
                if vals.iter().any(|x| kind(x) != first) {
                    p.push(
                        opath,
                        "in values must all be strings, all numbers or all booleans".to_string(),
                    );
                    continue;
                }
                in_list = Some(vals);
            }
            "startsWith" => match arg {
                Value::String(s) => {
                    if check_text(s, &opath, p) {
                        prefix = Some(s.clone());
                    }
                }
                other => p.push(
                    opath,
                    format!("startsWith takes a string, found {}", json_kind(other)),
                ),
            },
            "gt" | "gte" | "lt" | "lte" => {
                let Some(value) = scalar_at(arg, &opath, p) else {
                    continue;
                };
                if kind(&value) == Some(Kind::Bool) {
                    p.push(opath, "range bounds must be strings or numbers".to_string());
                    continue;
                }
                let bound = Bound {
                    value,
                    inclusive: op.ends_with('e'),
                };
                let slot = if op.starts_with('g') {
                    &mut lower
                } else {
                    &mut upper
                };
                if slot.is_some() {
                    p.push(
                        opath,
                        "give at most one of gt/gte and one of lt/lte".to_string(),
                    );
                } else {
                    *slot = Some(bound);
                }
            }
            _ => p.push(
                opath,
                "unknown operator (expected in, gt, gte, lt, lte or startsWith)".to_string(),
            ),
        }
    }
    if p.0.len() != before {
        return None;
    }
    let ranged = lower.is_some() || upper.is_some();
    let kinds =
        usize::from(ranged) + usize::from(in_list.is_some()) + usize::from(prefix.is_some());
    if kinds > 1 {
        p.push(
            path.to_string(),
            "combine range bounds freely, but use in and startsWith alone".to_string(),
        );
        return None;
    }
    if let (Some(l), Some(u)) = (&lower, &upper) {
        if kind(&l.value) != kind(&u.value) {
            p.push(
                path.to_string(),
                "both range bounds must be strings or both numbers".to_string(),
            );
            return None;
        }
    }
    if let Some(vals) = in_list {
        return Some(Condition::In(vals));
    }
    if let Some(s) = prefix {
        return Some(Condition::StartsWith(s));
    }
    Some(Condition::Range { lower, upper })
}

fn parse_filters(where_: Option<&WhereClause>, p: &mut Problems) -> Filters {
    let mut out = Filters::new();
    for (field, cond) in where_.into_iter().flatten() {
        let path = crate::manifest::path_key("$.where", field);
        if !is_valid_field_path(field) {
            p.push(path, format!("invalid field name {}", shown(field)));
            continue;
        }
        if let Some(c) = parse_condition(cond, &path, p) {
            out.insert(field.clone(), c);
        }
    }
    out
}

fn parse_order(order: Option<&Value>, p: &mut Problems) -> Option<OrderBy> {
    match order {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            if m.len() > 1 {
                p.push("$.orderBy".into(), "orderBy takes one field".into());
                return None;
            }
            let (field, dir) = m.iter().next()?;
            let path = crate::manifest::path_key("$.orderBy", field);
            if !is_valid_field_path(field) {
                p.push(path, format!("invalid field name {}", shown(field)));
                return None;
            }
            let direction = match dir.as_str() {
                Some("asc") => Direction::Asc,
                Some("desc") => Direction::Desc,
                _ => {
                    p.push(path, "direction must be \"asc\" or \"desc\"".into());
                    return None;
                }
            };
            Some(OrderBy {
                field: field.clone(),
                direction,
            })
        }
        Some(other) => {
            p.push(
                "$.orderBy".into(),
                format!(
                    "orderBy must be an object like {{\"createdAt\": \"desc\"}}, found {}",
                    json_kind(other)
                ),
            );
            None
        }
    }
}

/// Whether `field` is served by some declared index given the filters (leftmost prefix).
fn supported(decl: &CollectionDecl, filters: &Filters, field: &str) -> bool {
    decl.indexes.iter().any(|index| {
        let fields = index.fields();
        match fields.iter().position(|f| *f == field) {
            Some(k) => fields[..k]
                .iter()
                .all(|f| filters.get(*f).is_some_and(Condition::is_equality)),
            None => false,
        }
    })
}

fn check_indexed(
    decl: &CollectionDecl,
    filters: &Filters,
    order: Option<&OrderBy>,
) -> Result<(), Error> {
    let mut missing: Vec<String> = filters
        .keys()
        .filter(|f| !supported(decl, filters, f))
        .cloned()
        .collect();
    if let Some(o) = order {
        if !supported(decl, filters, &o.field) && !missing.contains(&o.field) {
            missing.push(o.field.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|f| shown(f))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::new(
        ErrorCode::NotIndexed,
        format!(
            "no declared index supports {list}: declare an index for it (a composite index serves its second field only when the first has an exact or in filter)"
        ),
    )
    .with_detail(serde_json::json!({ "fields": missing })))
}

/// Validates a `where` clause on its own (for `count`): shape, then indexes.
pub fn validate_where(
    where_: Option<&WhereClause>,
    decl: &CollectionDecl,
) -> Result<Filters, Error> {
    let mut p = Problems(Vec::new());
    let filters = parse_filters(where_, &mut p);
    p.into_result()?;
    check_indexed(decl, &filters, None)?;
    Ok(filters)
}

/// Validates query options against a collection declaration: `INVALID_ARGUMENT` (detail:
/// every shape problem with its path) first, then `NOT_INDEXED` (detail: `{fields}`).
pub fn validate(opts: &QueryOptions, decl: &CollectionDecl) -> Result<ValidatedQuery, Error> {
    let mut p = Problems(Vec::new());
    let filters = parse_filters(opts.where_.as_ref(), &mut p);
    let order_by = parse_order(opts.order_by.as_ref(), &mut p);
    let limit = opts.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        p.push(
            "$.limit".into(),
            format!("limit must be from 1 to {MAX_LIMIT}, found {limit}"),
        );
    }
    if let Some(c) = &opts.cursor {
        if c.is_empty() || c.len() > cursor::MAX_CURSOR_LEN {
            p.push(
                "$.cursor".into(),
                "cursor must be the string returned by the previous page".into(),
            );
        }
    }
    p.into_result()?;
    check_indexed(decl, &filters, order_by.as_ref())?;
    Ok(ValidatedQuery {
        filters,
        order_by,
        limit,
        cursor: opts.cursor.clone(),
    })
}

#[cfg(test)]
mod tests;
