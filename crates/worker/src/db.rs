//! D1 access: statements with bound arguments, typed rows, and the guarded write batch.
//!
//! D1 has no `BEGIN`: a write is one `batch()` (all statements commit or none do). A decision
//! that rests on facts read earlier starts its batch with a guard row
//! (`INSERT INTO _guard (ok) SELECT 0 WHERE NOT (<facts still true>)`, migration 0002): if a
//! fact changed in between, the guard's `CHECK (ok)` fails and the whole batch rolls back,
//! and the caller decides again on fresh facts ([`MAX_ATTEMPTS`] times at most).

use monodit_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::d1::{D1Database, D1PreparedStatement};

/// How many times a guarded decision is taken again after its facts changed underneath.
pub const MAX_ATTEMPTS: usize = 8;

/// A bound argument. Integers go to D1 as JS numbers, exact within ±2^53 (byte counts,
/// versions and timestamps stay far below).
#[derive(Debug, Clone)]
pub enum Arg {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A finite double.
    Real(f64),
    /// Text.
    Text(String),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl From<u64> for Arg {
    fn from(n: u64) -> Self {
        Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Arg {
    fn from(n: u32) -> Self {
        Arg::Int(n.into())
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Arg::Null)
    }
}

impl From<&Arg> for JsValue {
    fn from(a: &Arg) -> Self {
        match a {
            Arg::Null => JsValue::null(),
            Arg::Int(n) => JsValue::from_f64(*n as f64),
            Arg::Real(f) => JsValue::from_f64(*f),
            Arg::Text(s) => JsValue::from_str(s),
        }
    }
}

/// Builds an argument list: `args![a, b, c]`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::db::Arg::from($a)),*] };
}

/// A database failure: logged with its cause, answered as INTERNAL without it.
pub fn internal(context: &str, cause: impl std::fmt::Display) -> Error {
    worker::console_error!("{context}: {cause}");
    Error::new(ErrorCode::Internal, format!("internal error ({context})"))
}

/// The D1 binding and the statements run on it.
pub struct Db(pub D1Database);

impl Db {
    /// A prepared statement with `args` bound.
    pub fn stmt(&self, sql: &str, args: Vec<Arg>) -> Result<D1PreparedStatement, Error> {
        let values: Vec<JsValue> = args.iter().map(JsValue::from).collect();
        self.0
            .prepare(sql)
            .bind(&values)
            .map_err(|e| internal("database bind", e))
    }

    /// Every row, deserialised from D1's `{column: value}` objects.
    pub async fn all<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, Error> {
        let result = self
            .stmt(sql, args)?
            .all()
            .await
            .map_err(|e| internal("database read", e))?;
        if let Some(e) = result.error() {
            return Err(internal("database read", e));
        }
        result.results().map_err(|e| internal("database row", e))
    }

    /// The first row, if any.
    pub async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<T>, Error> {
        self.stmt(sql, args)?
            .first(None)
            .await
            .map_err(|e| internal("database read", e))
    }

    /// Runs one statement.
    pub async fn run(&self, sql: &str, args: Vec<Arg>) -> Result<(), Error> {
        self.stmt(sql, args)?
            .run()
            .await
            .map_err(|e| internal("database write", e))?;
        Ok(())
    }

    /// Runs `statements` as one atomic batch. `Ok(false)`: the batch's guard refused it (a
    /// fact changed; nothing was written), so decide again.
    pub async fn guarded_batch(&self, statements: Vec<D1PreparedStatement>) -> Result<bool, Error> {
        match self.0.batch(statements).await {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("CHECK constraint failed") => Ok(false),
            Err(e) => Err(internal("database batch", e)),
        }
    }
}

/// The guard statement: fails the batch (CHECK) unless `condition` holds when it runs.
pub fn guard(db: &Db, condition: &str, args: Vec<Arg>) -> Result<D1PreparedStatement, Error> {
    db.stmt(
        &format!("INSERT INTO _guard (ok) SELECT 0 WHERE NOT ({condition})"),
        args,
    )
}

/// The answer when a guarded decision lost [`MAX_ATTEMPTS`] races in a row.
pub fn contended() -> Error {
    Error::new(
        ErrorCode::Conflict,
        "too many concurrent writes to the same data; try again",
    )
}
