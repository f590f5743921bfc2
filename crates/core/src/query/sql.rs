//! SQL for SQLite / libSQL / D1: index DDL for declared indexes and the planner of validated
//! queries and counts (module doc of [`crate::query`], # SQL).

use super::*;

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
pub(super) fn prefix_successor(prefix: &str) -> Option<String> {
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

pub(super) fn check_params(params: &[SqlValue]) -> Result<(), Error> {
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
