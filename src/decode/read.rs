//! Typed reading of JSON the host did not get from a widget: backend answers (`http`),
//! IndexedDB records (`mirror`) and cross-tab messages (`sync::tab_wire`).
//!
//! Each type is read by hand from a parsed [`Value`] ([`FromJson`], [`Obj`]) instead of
//! through a derived `Deserialize`: the derived visitors, one per type and deserializer, were
//! the largest part of the host bundle (bench/README.md, "Bundle size"). [`parse`] is the one
//! JSON text parser: the browser's `JSON.parse`, then the walk of `decode::json` into a
//! `Value` (serde_json's own parser is then not in the host at all). The rules follow the
//! serde attributes of the types read: unknown fields are ignored, a missing or `null`
//! `Option` is `None`, a missing `#[serde(default)]` field is its default, anything else
//! missing or of the wrong type fails the whole value with the field's name. Numbers are JS
//! numbers (an integer beyond 2^53 is rounded, as in every page that reads the same JSON).
//!
//! The impls for core's wire types are in [`wire`](super::wire); record and message types
//! implement [`FromJson`] next to their definitions.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A reading problem, naming the field (callers turn it into their error code).
pub type Res<T> = Result<T, String>;

/// Parses JSON text.
pub fn parse(text: &str) -> Res<Value> {
    let v = js_sys::JSON::parse(text).map_err(|e| crate::errors::from_js(&e).message)?;
    super::json::trusted_to_json(&v, "JSON").map_err(|e| e.message)
}

/// Parses JSON text and reads a `T` from it.
pub fn read<T: FromJson>(text: &str) -> Res<T> {
    T::from_json(parse(text)?)
}

/// A type read from parsed JSON.
pub trait FromJson: Sized {
    /// Reads `v`, or says what is wrong with it.
    fn from_json(v: Value) -> Res<Self>;
}

fn expected<T>(what: &str, v: &Value) -> Res<T> {
    let found = monodit_core::manifest::type_name(v);
    Err(format!("expected {what}, found {found}"))
}

// Out of line: the generic readers below call these instead of each formatting its own.
#[inline(never)]
fn missing(k: &str) -> String {
    format!("missing field `{k}`")
}

#[inline(never)]
fn at(k: &str, e: String) -> String {
    format!("{k}: {e}")
}

/// A JSON object whose fields are taken out one by one (no copies of large values).
pub struct Obj(Map<String, Value>);

impl Obj {
    /// `v` as an object.
    pub fn new(v: Value) -> Res<Obj> {
        match v {
            Value::Object(m) => Ok(Obj(m)),
            other => expected("an object", &other),
        }
    }

    /// The field as it is, `None` only when missing (`null` is a value).
    pub fn take(&mut self, k: &str) -> Option<Value> {
        self.0.remove(k)
    }

    /// A required field.
    pub fn req<T: FromJson>(&mut self, k: &str) -> Res<T> {
        let v = self.0.remove(k).ok_or_else(|| missing(k))?;
        T::from_json(v).map_err(|e| at(k, e))
    }

    /// An optional field: missing or `null` is `None`.
    pub fn opt<T: FromJson>(&mut self, k: &str) -> Res<Option<T>> {
        match self.0.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::from_json(v).map(Some).map_err(|e| at(k, e)),
        }
    }

    /// A field with a default: missing or `null` is `T::default()`.
    pub fn or_default<T: FromJson + Default>(&mut self, k: &str) -> Res<T> {
        Ok(self.opt(k)?.unwrap_or_default())
    }
}

/// A string that must be one of `names`: its index.
pub fn one_of(v: Value, names: &[&str]) -> Res<usize> {
    let s = String::from_json(v)?;
    names
        .iter()
        .position(|n| *n == s)
        .ok_or_else(|| format!("unknown variant `{s}`"))
}

impl FromJson for Value {
    fn from_json(v: Value) -> Res<Self> {
        Ok(v)
    }
}

impl FromJson for String {
    fn from_json(v: Value) -> Res<Self> {
        match v {
            Value::String(s) => Ok(s),
            other => expected("a string", &other),
        }
    }
}

impl FromJson for bool {
    fn from_json(v: Value) -> Res<Self> {
        v.as_bool().map_or_else(|| expected("a boolean", &v), Ok)
    }
}

impl FromJson for u64 {
    fn from_json(v: Value) -> Res<Self> {
        // Beyond 2^53 a JS number arrives as a float: an integral one still counts
        // (`as` saturates at u64::MAX, which is where such a float came from).
        let integral = |f: f64| (f.fract() == 0.0 && f >= 0.0).then_some(f as u64);
        v.as_u64()
            .or_else(|| v.as_f64().and_then(integral))
            .map_or_else(|| expected("an unsigned integer", &v), Ok)
    }
}

impl FromJson for u32 {
    fn from_json(v: Value) -> Res<Self> {
        let n = u64::from_json(v)?;
        u32::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
}

impl FromJson for i64 {
    fn from_json(v: Value) -> Res<Self> {
        v.as_i64().map_or_else(|| expected("an integer", &v), Ok)
    }
}

impl FromJson for f64 {
    fn from_json(v: Value) -> Res<Self> {
        v.as_f64().map_or_else(|| expected("a number", &v), Ok)
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(v: Value) -> Res<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: Value) -> Res<Self> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_json(item).map_err(|e| format!("[{i}]: {e}")))
                .collect(),
            other => expected("an array", &other),
        }
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(v: Value) -> Res<Self> {
        Obj::new(v).map(|o| o.0)
    }
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(v: Value) -> Res<Self> {
        // Inserted one by one: `collect()` into a BTreeMap sorts first, one more sort
        // instantiated per value type.
        let mut out = BTreeMap::new();
        for (k, v) in Obj::new(v)?.0 {
            let t = T::from_json(v).map_err(|e| at(&k, e))?;
            out.insert(k, t);
        }
        Ok(out)
    }
}
