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

// ---------------------------------------------------------------------------------------
// SQL

/// `$.a.b` for a validated field path.
pub fn json_path(field: &str) -> String {
    format!("$.{field}")
}

/// `json_extract(data, '$.field')`: the expression indexes are built on and queries use.
pub fn field_expr(field: &str) -> String {
    format!("json_extract(data, '{}')", json_path(field))
}

fn type_expr(field: &str) -> String {
    format!("json_type(data, '{}')", json_path(field))
}

fn ident_err(what: &str, value: &str) -> Error {
    Error::invalid(format!("invalid {what} {}", shown(value)))
}

fn check_scope(plugin_id: &str, collection: &str) -> Result<(), Error> {
    if !is_valid_widget_id(plugin_id) {
        return Err(ident_err("plugin id", plugin_id));
    }
    if !is_valid_collection_name(collection) {
        return Err(ident_err("collection name", collection));
    }
    Ok(())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The name and `CREATE INDEX` statement of one declared index (a partial expression index,
/// led by `user_id` and ended by `id`). The name is `idx_<plugin>_<collection>_<fields>_<hash>`:
/// readable, with 8 hex digits of SHA-256 over the exact identifiers so that e.g. plugin
/// `a_b` + collection `c` and plugin `a` + collection `b_c` never share a name
/// (SQLite index names are also case-insensitive, fields are not).
pub fn index_ddl(
    plugin_id: &str,
    collection: &str,
    index: &Index,
) -> Result<(String, String), Error> {
    check_scope(plugin_id, collection)?;
    let fields = index.fields();
    if fields.is_empty() || fields.iter().any(|f| !is_valid_field_path(f)) {
        return Err(ident_err("index", &fields.join(",")));
    }
    let mut parts: Vec<&[u8]> = vec![plugin_id.as_bytes(), collection.as_bytes()];
    parts.extend(fields.iter().map(|f| f.as_bytes()));
    let hash = QueryFingerprint::from_parts(&parts);
    let hex: String = hash.0[..4].iter().map(|b| format!("{b:02x}")).collect();
    let readable: Vec<String> = fields.iter().map(|f| sanitize(f)).collect();
    let name = format!(
        "idx_{}_{}_{}_{hex}",
        sanitize(plugin_id),
        collection,
        readable.join("_")
    );
    let exprs: Vec<String> = fields.iter().map(|f| field_expr(f)).collect();
    let sql = format!(
        "CREATE INDEX IF NOT EXISTS \"{name}\" ON {TABLE}(user_id, {}, id) WHERE plugin_id = '{plugin_id}' AND collection = '{collection}'",
        exprs.join(", ")
    );
    Ok((name, sql))
}

/// Every index a manifest's collections declare, for the plugin id `manifest.id`
/// (none when the manifest declares no collections, and so may have no id).
pub fn manifest_index_ddl(manifest: &Manifest) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let Some(plugin_id) = manifest.id.as_deref() else {
        return Ok(out);
    };
    for (name, decl) in &manifest.collections {
        for index in &decl.indexes {
            out.push(index_ddl(plugin_id, name, index)?);
        }
    }
    Ok(out)
}

/// A statement and its parameters (`?1`, `?2`, ... in order).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlStatement {
    /// SQL text.
    pub sql: String,
    /// Parameter values; `params[i]` binds `?{i+1}`.
    pub params: Vec<SqlValue>,
}

struct Builder {
    params: Vec<SqlValue>,
}

impl Builder {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn base(&mut self, user: &str, plugin: &str, collection: &str) -> String {
        let u = self.bind(SqlValue::Text(user.to_string()));
        let p = self.bind(SqlValue::Text(plugin.to_string()));
        let c = self.bind(SqlValue::Text(collection.to_string()));
        format!("user_id = {u} AND plugin_id = {p} AND collection = {c}")
    }

    fn filters(&mut self, filters: &Filters, out: &mut Vec<String>) {
        for (field, cond) in filters {
            let k = field_expr(field);
            let t = type_expr(field);
            match cond {
                Condition::Eq(v) => {
                    let guard = guard_for(v);
                    let ph = self.bind(v.clone());
                    out.push(format!("{k} = {ph}"));
                    out.push(format!("{t} {guard}"));
                }
                Condition::In(vals) => {
                    let Some(first) = vals.first() else {
                        out.push("0".into());
                        continue;
                    };
                    let guard = if let SqlValue::Bool(_) = first {
                        let mut types: Vec<&str> = vals
                            .iter()
                            .map(|v| {
                                if v == &SqlValue::Bool(true) {
                                    "'true'"
                                } else {
                                    "'false'"
                                }
                            })
                            .collect();
                        types.sort_unstable();
                        types.dedup();
                        format!("IN ({})", types.join(", "))
                    } else {
                        guard_for(first).to_string()
                    };
                    let phs: Vec<String> = vals.iter().map(|v| self.bind(v.clone())).collect();
                    out.push(format!("{k} IN ({})", phs.join(", ")));
                    out.push(format!("{t} {guard}"));
                }
                Condition::Range { lower, upper } => {
                    let Some(sample) = lower.as_ref().or(upper.as_ref()) else {
                        continue;
                    };
                    let text = matches!(sample.value, SqlValue::Text(_));
                    if let Some(b) = lower {
                        let ph = self.bind(b.value.clone());
                        out.push(format!("{k} {} {ph}", if b.inclusive { ">=" } else { ">" }));
                    } else if text {
                        // Strings sort above every number: keep the index range inside strings.
                        out.push(format!("{k} >= ''"));
                    }
                    if let Some(b) = upper {
                        let ph = self.bind(b.value.clone());
                        out.push(format!("{k} {} {ph}", if b.inclusive { "<=" } else { "<" }));
                    } else if !text {
                        // Numbers sort below every string: stop the index range there.
                        out.push(format!("{k} < ''"));
                    }
                    out.push(format!("{t} {}", guard_for(&sample.value)));
                }
                Condition::StartsWith(prefix) => {
                    let lo = self.bind(SqlValue::Text(prefix.clone()));
                    out.push(format!("{k} >= {lo}"));
                    if let Some(next) = prefix_successor(prefix) {
                        let hi = self.bind(SqlValue::Text(next));
                        out.push(format!("{k} < {hi}"));
                    }
                    out.push(format!("{t} = 'text'"));
                }
            }
        }
    }
}

fn guard_for(v: &SqlValue) -> &'static str {
    match v {
        SqlValue::Text(_) => "= 'text'",
        SqlValue::Integer(_) | SqlValue::Real(_) => "IN ('integer', 'real')",
        SqlValue::Bool(true) => "= 'true'",
        SqlValue::Bool(false) => "= 'false'",
        SqlValue::Null => "IS NULL",
    }
}

/// The smallest string greater than every string starting with `prefix` (BINARY collation
/// compares UTF-8 bytes, which orders like code points), or None when there is none.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(c) = next {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The fingerprint cursors of this query are bound to.
pub fn query_fingerprint(
    plugin_id: &str,
    collection: &str,
    user_scope: &str,
    q: &ValidatedQuery,
) -> QueryFingerprint {
    let filters = serde_json::to_vec(&q.filters).unwrap_or_default();
    let order = serde_json::to_vec(&q.order_by).unwrap_or_default();
    QueryFingerprint::from_parts(&[
        plugin_id.as_bytes(),
        collection.as_bytes(),
        user_scope.as_bytes(),
        &filters,
        &order,
    ])
}

/// One row of a query plan's result: columns `id`, `data` (parsed), `sort_key` (as read).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    /// Column `id`.
    pub id: String,
    /// Column `data`, parsed as JSON.
    pub data: Value,
    /// Column `sort_key` (NULL for unordered queries); read it without conversion.
    pub sort_key: SqlValue,
}

/// A planned page query. Run `sql` with `params`; it returns at most `limit + 1` rows with
/// columns `id, data, sort_key`, where `data` is NULL from the first row past
/// [`MAX_PAGE_BYTES`] on: hand the rows before that one to [`SqlPlan::finish_page`] (with
/// `cut` when it came), or all rows to [`SqlPlan::finish`] when none did.
#[derive(Clone)]
pub struct SqlPlan {
    /// SQL text.
    pub sql: String,
    /// Parameter values; `params[i]` binds `?{i+1}`.
    pub params: Vec<SqlValue>,
    /// Page size asked for.
    pub limit: u32,
    /// The query's order.
    pub order_by: Option<OrderBy>,
    /// Fingerprint the next cursor is bound to.
    pub fingerprint: QueryFingerprint,
    secret: Vec<u8>,
}

impl std::fmt::Debug for SqlPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlPlan")
            .field("sql", &self.sql)
            .field("params", &self.params)
            .field("limit", &self.limit)
            .field("order_by", &self.order_by)
            .finish_non_exhaustive()
    }
}

impl SqlPlan {
    /// Turns the rows of `sql` into one page of `query()` results: the first `limit` items,
    /// `hasMore`, and a signed cursor after the last item when more exist.
    pub fn finish(&self, rows: Vec<PlanRow>) -> Result<QueryResult, Error> {
        self.finish_page(rows, false)
    }

    /// [`SqlPlan::finish`] for rows the byte cap `cut` short (a row with NULL `data` came
    /// after them): the page ends there with `hasMore` and a cursor after its last item.
    pub fn finish_page(&self, mut rows: Vec<PlanRow>, cut: bool) -> Result<QueryResult, Error> {
        let limit = self.limit as usize;
        let has_more = cut || rows.len() > limit;
        rows.truncate(limit);
        let cursor = match rows.last() {
            Some(last) if has_more => {
                if self.order_by.is_some() && inexact_integer(&last.sort_key) {
                    return Err(Error::invalid(
                        "the orderBy field's value of the last item is an integer of 2^53 or more, which cannot paginate exactly; store it as a string",
                    ));
                }
                let payload = CursorPayload {
                    fingerprint: self.fingerprint,
                    sort_key: self.order_by.as_ref().map(|_| last.sort_key.clone()),
                    last_id: last.id.clone(),
                };
                let c = cursor::encode(&payload, &self.secret);
                if c.len() > cursor::MAX_CURSOR_LEN {
                    return Err(Error::invalid(
                        "the orderBy field's value of the last item is too long to paginate after; order by a shorter field",
                    ));
                }
                Some(c)
            }
            _ => None,
        };
        let items = rows
            .into_iter()
            .map(|r| CollectionItem {
                id: r.id,
                data: r.data,
            })
            .collect();
        Ok(QueryResult {
            items,
            cursor,
            has_more,
        })
    }
}

fn check_params(params: &[SqlValue]) -> Result<(), Error> {
    if params.len() > MAX_PARAMS {
        return Err(Error::invalid(format!(
            "query too large: more than {MAX_PARAMS} bound values"
        )));
    }
    if params
        .iter()
        .any(|p| matches!(p, SqlValue::Real(f) if !f.is_finite()))
    {
        return Err(Error::invalid("numbers in queries must be finite"));
    }
    if params.iter().any(inexact_integer) {
        return Err(Error::invalid(
            "integers in queries must be smaller than 2^53 in magnitude; store larger ones as strings",
        ));
    }
    Ok(())
}

/// Plans one page of a validated query for `user_scope` (the authenticated user id). The
/// cursor, if any, is verified here (`INVALID_CURSOR`).
pub fn plan_query(
    plugin_id: &str,
    collection: &str,
    user_scope: &str,
    q: &ValidatedQuery,
    cursor_secret: &[u8],
) -> Result<SqlPlan, Error> {
    check_scope(plugin_id, collection)?;
    if q.limit == 0 || q.limit > MAX_LIMIT {
        return Err(Error::invalid(format!(
            "limit must be from 1 to {MAX_LIMIT}"
        )));
    }
    let fingerprint = query_fingerprint(plugin_id, collection, user_scope, q);
    let after = match &q.cursor {
        Some(c) => Some(cursor::decode(c, cursor_secret, &fingerprint)?),
        None => None,
    };
    let mut b = Builder { params: Vec::new() };
    let mut conds = vec![b.base(user_scope, plugin_id, collection)];
    b.filters(&q.filters, &mut conds);
    let base = conds.join(" AND ");
    let fetch = b.bind(SqlValue::Integer(i64::from(q.limit) + 1));

    let sql = match &q.order_by {
        None => {
            let mut w = base;
            if let Some(a) = &after {
                if a.sort_key.is_some() {
                    return Err(cursor_mismatch());
                }
                let id = b.bind(SqlValue::Text(a.last_id.clone()));
                w = format!("{w} AND id > {id}");
            }
            format!("SELECT id, data, NULL AS sort_key FROM {TABLE} WHERE {w} ORDER BY id ASC LIMIT {fetch}")
        }
        Some(o) => {
            let k = field_expr(&o.field);
            let dir = o.direction.sql();
            let select = |w: &str| {
                format!("SELECT id, data, {k} AS sort_key FROM {TABLE} WHERE {w} ORDER BY {k} {dir}, id {dir} LIMIT {fetch}")
            };
            // Arms of the keyset condition, in page order. NULL (missing field) sorts first,
            // and row values never compare equal to NULL, so NULL runs get their own arm.
            let arms: Vec<String> = match &after {
                None => vec![String::new()],
                Some(a) => {
                    let key = a.sort_key.clone().ok_or_else(cursor_mismatch)?;
                    let id = b.bind(SqlValue::Text(a.last_id.clone()));
                    match (o.direction, key) {
                        (Direction::Asc, SqlValue::Null) => {
                            vec![
                                format!("{k} IS NULL AND id > {id}"),
                                format!("{k} IS NOT NULL"),
                            ]
                        }
                        (Direction::Asc, key) => {
                            let kp = b.bind(key);
                            vec![format!("({k}, id) > ({kp}, {id})")]
                        }
                        (Direction::Desc, SqlValue::Null) => {
                            vec![format!("{k} IS NULL AND id < {id}")]
                        }
                        (Direction::Desc, key) => {
                            let kp = b.bind(key);
                            vec![format!("({k}, id) < ({kp}, {id})"), format!("{k} IS NULL")]
                        }
                    }
                }
            };
            if arms.len() == 1 {
                let w = if arms[0].is_empty() {
                    base
                } else {
                    format!("{base} AND {}", arms[0])
                };
                select(&w)
            } else {
                let parts: Vec<String> = arms
                    .iter()
                    .map(|arm| {
                        format!(
                            "SELECT id, data, sort_key FROM ({})",
                            select(&format!("{base} AND {arm}"))
                        )
                    })
                    .collect();
                format!(
                    "{} ORDER BY sort_key {dir}, id {dir} LIMIT {fetch}",
                    parts.join(" UNION ALL ")
                )
            }
        }
    };
    // The byte cap (MAX_PAGE_BYTES), as a running sum in the page's own order: rows past it
    // come back with a NULL `data`, and the adapter stops there (SqlPlan::finish_page).
    let dir = q.order_by.as_ref().map_or("ASC", |o| o.direction.sql());
    let sql = format!(
        "SELECT id, CASE WHEN n = 1 OR run <= {MAX_PAGE_BYTES} THEN data END AS data, sort_key \
         FROM (SELECT id, data, sort_key, ROW_NUMBER() OVER w AS n, \
           SUM(length(CAST(data AS BLOB))) OVER w AS run FROM ({sql}) \
           WINDOW w AS (ORDER BY sort_key {dir}, id {dir} ROWS UNBOUNDED PRECEDING)) \
         ORDER BY sort_key {dir}, id {dir}"
    );
    check_params(&b.params)?;
    Ok(SqlPlan {
        sql,
        params: b.params,
        limit: q.limit,
        order_by: q.order_by.clone(),
        fingerprint,
        secret: cursor_secret.to_vec(),
    })
}

fn cursor_mismatch() -> Error {
    Error::new(
        ErrorCode::InvalidCursor,
        "invalid cursor: it belongs to a query with another order",
    )
}

/// Plans `count(where)`: one row, one column `count`.
pub fn plan_count(
    plugin_id: &str,
    collection: &str,
    user_scope: &str,
    filters: &Filters,
) -> Result<SqlStatement, Error> {
    check_scope(plugin_id, collection)?;
    let mut b = Builder { params: Vec::new() };
    let mut conds = vec![b.base(user_scope, plugin_id, collection)];
    b.filters(filters, &mut conds);
    let sql = format!(
        "SELECT COUNT(*) AS count FROM {TABLE} WHERE {}",
        conds.join(" AND ")
    );
    check_params(&b.params)?;
    Ok(SqlStatement {
        sql,
        params: b.params,
    })
}

#[cfg(test)]
mod tests {
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
        let where_big =
            QueryOptions::from_json(&json!({"where": {"n": 9007199254740993u64}})).unwrap();
        let vq = validate(&where_big, &decl).unwrap();
        assert!(plan_query("p", "c", "u", &vq, b"k").is_err());
    }

    fn decl(indexes: Value) -> CollectionDecl {
        let m = Manifest::parse(&json!({"id": "forms", "storage": {"c": {"indexes": indexes}}}))
            .unwrap();
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
        let o =
            opts(json!({"where": {"a": 1}, "orderBy": {"a": "asc"}, "limit": 3, "cursor": "c"}));
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
        let (name, sql) =
            index_ddl("forms", "submissions", &Index::Single("formId".into())).unwrap();
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
}
