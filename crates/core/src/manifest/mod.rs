//! Widget manifests (README, For widget authors): identity, storage contracts and collection
//! declarations, validated with every problem reported by JSON path, all at once.
//!
//! ```json
//! {
//!   "id": "forms",                       // or its alias "slug"; required with collections
//!   "widgetType": "dynamic",             // "basic" (default) | "dynamic"
//!   "storage": {
//!     "bindings": [                       // only with "widgetType": "dynamic"
//!       {"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext",
//!        "schemaVersion": 1, "configKey": "noteBucket", "label": "Notes", "shareable": true}
//!     ],
//!     "submissions": {"indexes": ["formId", ["formId", "createdAt"]]}   // a collection
//!   }
//! }
//! ```
//!
//! # Decisions
//! - **Unknown fields.** Top-level fields other than `id`, `slug`, `widgetType` and `storage`
//!   are ignored: a real manifest also carries identity and profile data (name, version, ...)
//!   owned by other tools. Inside the storage contract (each binding, each collection
//!   declaration) unknown fields are rejected with their path, because a typo there
//!   (`"schemaVersoin"`) silently changes compatibility.
//! - **Widget id.** `id` (alias `slug`; both present must be equal) matches
//!   [`is_valid_widget_id`]: `^[a-z0-9][a-z0-9._-]{0,63}$`. It is the plugin id that scopes
//!   collections and is spliced (validated) into index DDL, so it is required when `storage`
//!   declares collections; a manifest with only bindings may omit it.
//! - **Bindings** need `"widgetType": "dynamic"` (a basic widget cannot declare bucket
//!   storage; README, For widget authors); collections are allowed for any widget type. At
//!   most [`MAX_BINDINGS`]. Keys are unique and match
//!   `^[A-Za-z][A-Za-z0-9_-]{0,31}$` (they appear in default bucket ids `instanceId:key`).
//!   `schemaId` matches `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`; `schemaVersion` is an integer
//!   in `1..=4294967295` (`1.0` is rejected: JSON from JS never spells integers that way).
//!   `configKey` is a config field name ([`is_valid_config_key`]); config keys are unique
//!   across bindings and `storageNamespace` is reserved for the first d1-json binding, which
//!   always honours it (see [`crate::buckets`]). `label` is a non-empty string of at most 200
//!   characters; `shareable` a boolean (default false).
//! - **Collections** are every key of `storage` other than `bindings` (reserved). Names match
//!   `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, must not start with `__`, and must not be `constructor`,
//!   `prototype` or `then` (collections become JS properties of `ctx.storage`; a `then`
//!   property would make it thenable). At most [`MAX_COLLECTIONS`]. A declaration is an object
//!   whose only field is `indexes` (optional, default empty), an array of at most
//!   [`MAX_INDEXES`] indexes: a field name (single) or an array of 2 to
//!   [`MAX_COMPOSITE_FIELDS`] distinct field names (composite; a one-element array is rejected
//!   in favour of the plain string). Duplicate indexes are rejected.
//! - **Field names** ([`is_valid_field_path`]) may be dotted paths into nested objects
//!   (`author.name`), 1 to 4 segments, each `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, none starting with
//!   `__` (so `__proto__` is out) and none equal to `constructor` or `prototype`. They become
//!   JSON paths `$.author.name` inside SQL, so nothing outside this grammar ever gets there.

use crate::api::Contract;
use crate::buckets::Backend;
use crate::errors::{Error, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

mod grammar;
mod parse;

pub use grammar::*;
use parse::{parse_collection, parse_manifest};

/// Maximum number of storage bindings in one manifest.
pub const MAX_BINDINGS: usize = 16;
/// Maximum number of collections in one manifest.
pub const MAX_COLLECTIONS: usize = 32;
/// Maximum number of indexes on one collection.
pub const MAX_INDEXES: usize = 16;
/// Maximum number of fields in a composite index.
pub const MAX_COMPOSITE_FIELDS: usize = 4;
/// Maximum number of segments in a dotted field path.
pub const MAX_FIELD_SEGMENTS: usize = 4;
/// Maximum length of a binding label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Most problems listed in one error's `detail` (one more entry says that more exist).
pub const MAX_PROBLEMS: usize = 100;
/// Config field the first d1-json binding reads ([`crate::buckets`], resolution order).
pub const STORAGE_NAMESPACE_KEY: &str = "storageNamespace";
/// The reserved key of `storage` holding the bindings (never a collection name).
pub const BINDINGS_KEY: &str = "bindings";

/// `basic` widgets cannot declare bucket storage; `dynamic` ones can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WidgetType {
    /// The default: no storage contract.
    #[default]
    Basic,
    /// May declare `storage.bindings`.
    Dynamic,
}

/// One entry of `storage.bindings`: a storage contract and how the host finds its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// Logical binding name used by the widget author.
    pub key: String,
    /// `d1-json` or `r2-assets`.
    pub backend: Backend,
    /// Logical schema identifier used for compatibility.
    pub schema_id: String,
    /// Integer schema version (≥ 1).
    pub schema_version: u32,
    /// Config field the host uses to store the connected bucket id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_key: Option<String>,
    /// Human-readable label for the settings UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether the binding is intended to be shared across widgets.
    pub shareable: bool,
}

impl Binding {
    /// The contract a bucket for this binding is created with and checked against.
    pub fn contract(&self) -> Contract {
        Contract {
            backend: self.backend,
            schema_id: self.schema_id.clone(),
            schema_version: self.schema_version,
        }
    }
}

/// A declared index: one field, or a composite of 2..=[`MAX_COMPOSITE_FIELDS`] fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Index {
    /// `"formId"`.
    Single(String),
    /// `["formId", "createdAt"]`.
    Composite(Vec<String>),
}

impl Index {
    /// The indexed fields, in index order.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Index::Single(f) => vec![f.as_str()],
            Index::Composite(fs) => fs.iter().map(String::as_str).collect(),
        }
    }
}

/// A collection declaration: `{"indexes": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectionDecl {
    /// Declared indexes, in manifest order.
    pub indexes: Vec<Index>,
}

impl CollectionDecl {
    /// Validates a stand-alone declaration such as `{"indexes": ["formId", ["formId", "createdAt"]]}`
    /// or a bare index array (how a server may have stored it), with the manifest's rules.
    /// `INVALID_MANIFEST` with `detail` = `[{path, message}]` (paths start at `$`).
    pub fn from_json(value: &Value) -> Result<CollectionDecl, Error> {
        let mut p = Problems(Vec::new());
        let wrapped;
        let value = if value.is_array() {
            wrapped = serde_json::json!({ "indexes": value });
            &wrapped
        } else {
            value
        };
        let decl = parse_collection(value, "$", &mut p);
        match decl {
            Some(d) if p.0.is_empty() => Ok(d),
            _ => Err(problems_error(p)),
        }
    }
}

/// A validated widget manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Widget / plugin id (`id`, or its alias `slug`); always present when
    /// [`Manifest::collections`] is non-empty.
    pub id: Option<String>,
    /// `basic` or `dynamic`.
    pub widget_type: WidgetType,
    /// `storage.bindings`, in manifest order (order matters for default buckets).
    pub bindings: Vec<Binding>,
    /// Every other key of `storage`: collection name → declaration.
    pub collections: BTreeMap<String, CollectionDecl>,
}

/// One manifest problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path such as `$.storage.bindings[1].schemaVersion`.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        // Bounded so a hostile manifest cannot make an enormous error body.
        match self.0.len() {
            n if n < MAX_PROBLEMS => self.0.push(Problem {
                path: path.to_string(),
                message: message.into(),
            }),
            n if n == MAX_PROBLEMS => self.0.push(Problem {
                path: "$".to_string(),
                message: format!("more problems not shown (the first {MAX_PROBLEMS} are listed)"),
            }),
            _ => {}
        }
    }
}

/// Appends an object key to a JSON path: `.key` when it is a plain identifier, else
/// `["key"]` with JSON escaping (so hostile keys stay readable and unambiguous).
pub fn path_key(base: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", Value::String(key.to_string()))
    }
}

/// What kind of JSON value `v` is, as error messages name it ("a string", "an array", ...).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short, safe rendering of user input for error messages.
pub(crate) fn shown(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{}{more}", Value::String(cut))
}

impl Manifest {
    /// Validates a manifest JSON value. On failure the error has code `INVALID_MANIFEST`
    /// and `detail` = `[{path, message}, ...]` listing every problem found.
    pub fn parse(value: &Value) -> Result<Manifest, Error> {
        let mut p = Problems(Vec::new());
        let manifest = parse_manifest(value, &mut p);
        if p.0.is_empty() {
            if let Some(m) = manifest {
                return Ok(m);
            }
            p.push("$", "invalid manifest");
        }
        Err(problems_error(p))
    }

    /// The binding with this key.
    pub fn binding(&self, key: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.key == key)
    }

    /// The first binding of this backend (the one `ctx.store` / `ctx.assets` use by default).
    pub fn binding_for(&self, backend: Backend) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.backend == backend)
    }

    /// Every binding of this backend, in manifest order.
    pub fn bindings_for(&self, backend: Backend) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.backend == backend)
    }

    /// The binding a call uses: the one named `key` (which must have `backend`), else the first
    /// binding of `backend`. Fails with `NO_BINDING`.
    pub fn select_binding(&self, backend: Backend, key: Option<&str>) -> Result<&Binding, Error> {
        let found = match key {
            Some(k) => self.binding(k).filter(|b| b.backend == backend),
            None => self.binding_for(backend),
        };
        found.ok_or_else(|| {
            let what = match key {
                Some(k) => format!("no {} binding with key {}", backend.as_str(), shown(k)),
                None => format!("the manifest declares no {} binding", backend.as_str()),
            };
            Error::new(ErrorCode::NoBinding, what)
        })
    }

    /// The declaration of a collection. Fails with `UNDECLARED_COLLECTION`.
    pub fn collection(&self, name: &str) -> Result<&CollectionDecl, Error> {
        self.collections.get(name).ok_or_else(|| {
            Error::new(
                ErrorCode::UndeclaredCollection,
                format!(
                    "collection {} is not declared in the manifest's storage",
                    shown(name)
                ),
            )
            .with_detail(serde_json::json!({ "collection": name }))
        })
    }

    /// The contract of one of this manifest's bindings.
    pub fn contract(&self, binding: &Binding) -> Contract {
        binding.contract()
    }

    /// Position of `binding` among the bindings of its backend (0 = first), or `None` when the
    /// binding is not part of this manifest.
    pub fn backend_position(&self, binding: &Binding) -> Option<usize> {
        self.bindings_for(binding.backend)
            .position(|b| b.key == binding.key)
    }
}

fn problems_error(mut p: Problems) -> Error {
    if p.0.is_empty() {
        p.push("$", "invalid");
    }
    let first =
        p.0.first()
            .map(|x| format!("{}: {}", x.path, x.message))
            .unwrap_or_default();
    let n = p.0.len();
    let message = if n == 1 {
        format!("invalid manifest: {first}")
    } else {
        format!("invalid manifest ({n} problems), first: {first}")
    };
    let detail = serde_json::to_value(&p.0).unwrap_or(Value::Null);
    Error::new(ErrorCode::InvalidManifest, message).with_detail(detail)
}

#[cfg(test)]
mod tests;
