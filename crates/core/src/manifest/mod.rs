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

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn ident_segment(s: &str, max: usize) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= max && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn js_hazard(s: &str) -> bool {
    s.starts_with("__") || s == "constructor" || s == "prototype"
}

/// Widget / plugin id grammar: `^[a-z0-9][a-z0-9._-]{0,63}$`.
pub fn is_valid_widget_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Collection name grammar: `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, not starting with `__`, not
/// `bindings`, `constructor`, `prototype` or `then`.
pub fn is_valid_collection_name(s: &str) -> bool {
    ident_segment(s, 64) && !js_hazard(s) && s != BINDINGS_KEY && s != "then"
}

/// Index / query field grammar: 1..=[`MAX_FIELD_SEGMENTS`] dot-separated segments, each
/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, none starting with `__`, none `constructor`/`prototype`.
pub fn is_valid_field_path(s: &str) -> bool {
    let segments: Vec<&str> = s.split('.').collect();
    segments.len() <= MAX_FIELD_SEGMENTS
        && segments
            .iter()
            .all(|seg| ident_segment(seg, 64) && !js_hazard(seg))
}

/// Binding key grammar: `^[A-Za-z][A-Za-z0-9_-]{0,31}$`.
pub fn is_valid_binding_key(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Config field grammar for `configKey`: `^[A-Za-z_][A-Za-z0-9_]{0,63}$`, not starting
/// with `__`, not `constructor`/`prototype`.
pub fn is_valid_config_key(s: &str) -> bool {
    ident_segment(s, 64) && !js_hazard(s)
}

/// Schema id grammar: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (e.g. `notes.plaintext`).
pub fn is_valid_schema_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
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

fn parse_manifest(value: &Value, p: &mut Problems) -> Option<Manifest> {
    let Some(obj) = value.as_object() else {
        p.push(
            "$",
            format!("the manifest must be an object, found {}", type_name(value)),
        );
        return None;
    };

    let id = parse_id(obj, p);

    let widget_type = match obj.get("widgetType") {
        None => WidgetType::Basic,
        Some(Value::String(s)) if s == "basic" => WidgetType::Basic,
        Some(Value::String(s)) if s == "dynamic" => WidgetType::Dynamic,
        Some(Value::String(s)) => {
            p.push(
                "$.widgetType",
                format!("must be \"basic\" or \"dynamic\", found {}", shown(s)),
            );
            WidgetType::Basic
        }
        Some(v) => {
            p.push(
                "$.widgetType",
                format!("must be \"basic\" or \"dynamic\", found {}", type_name(v)),
            );
            WidgetType::Basic
        }
    };

    let mut bindings = Vec::new();
    let mut collections = BTreeMap::new();
    match obj.get("storage") {
        None => {}
        Some(Value::Object(storage)) => {
            for (name, decl) in storage {
                if name == BINDINGS_KEY {
                    bindings = parse_bindings(decl, widget_type, p);
                    continue;
                }
                let path = path_key("$.storage", name);
                if !is_valid_collection_name(name) {
                    p.push(
                        &path,
                        format!(
                            "invalid collection name {}: use letters, digits and _ (start with a letter or _, at most 64, not starting with __, not constructor/prototype/then)",
                            shown(name)
                        ),
                    );
                }
                if let Some(d) = parse_collection(decl, &path, p) {
                    collections.insert(name.clone(), d);
                }
            }
            if collections.len() > MAX_COLLECTIONS {
                p.push(
                    "$.storage",
                    format!("at most {MAX_COLLECTIONS} collections may be declared"),
                );
            }
        }
        Some(v) => p.push(
            "$.storage",
            format!("must be an object, found {}", type_name(v)),
        ),
    }

    if id.is_none()
        && !collections.is_empty()
        && !obj.contains_key("id")
        && !obj.contains_key("slug")
    {
        p.push(
            "$.id",
            "required when storage declares collections: the widget id (or \"slug\") names whose data they are",
        );
    }

    Some(Manifest {
        id,
        widget_type,
        bindings,
        collections,
    })
}

fn parse_id(obj: &Map<String, Value>, p: &mut Problems) -> Option<String> {
    let mut found: Option<String> = None;
    for field in ["id", "slug"] {
        let path = format!("$.{field}");
        match obj.get(field) {
            None => {}
            Some(Value::String(s)) if is_valid_widget_id(s) => match &found {
                Some(prev) if prev != s => {
                    p.push(&path, format!("differs from id {}; give one or make them equal", shown(prev)))
                }
                _ => found = Some(s.clone()),
            },
            Some(Value::String(s)) => p.push(
                &path,
                format!("invalid widget id {}: use a-z, 0-9, '.', '_', '-' (start with a-z or 0-9, at most 64)", shown(s)),
            ),
            Some(v) => p.push(&path, format!("must be a string, found {}", type_name(v))),
        }
    }
    found
}

fn parse_bindings(value: &Value, widget_type: WidgetType, p: &mut Problems) -> Vec<Binding> {
    let base = "$.storage.bindings";
    let Some(items) = value.as_array() else {
        p.push(
            base,
            format!("must be an array, found {}", type_name(value)),
        );
        return Vec::new();
    };
    if widget_type != WidgetType::Dynamic && !items.is_empty() {
        p.push(base, "storage bindings require \"widgetType\": \"dynamic\" (a basic widget cannot declare bucket storage)");
    }
    if items.len() > MAX_BINDINGS {
        p.push(
            base,
            format!("at most {MAX_BINDINGS} bindings may be declared"),
        );
    }
    let mut out: Vec<Binding> = Vec::new();
    let mut keys = BTreeSet::new();
    let mut config_keys = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let Some(b) = parse_binding(item, &path, p) else {
            continue;
        };
        if !keys.insert(b.key.clone()) {
            p.push(
                &format!("{path}.key"),
                format!("duplicate binding key {}", shown(&b.key)),
            );
        }
        if let Some(ck) = &b.config_key {
            let first_d1 =
                b.backend == Backend::D1Json && !out.iter().any(|o| o.backend == Backend::D1Json);
            if ck == STORAGE_NAMESPACE_KEY && !first_d1 {
                p.push(
                    &format!("{path}.configKey"),
                    "\"storageNamespace\" is reserved for the first d1-json binding",
                );
            } else if !config_keys.insert(ck.clone()) {
                p.push(
                    &format!("{path}.configKey"),
                    format!("duplicate configKey {}", shown(ck)),
                );
            }
        }
        out.push(b);
    }
    out
}

fn parse_binding(value: &Value, path: &str, p: &mut Problems) -> Option<Binding> {
    let Some(obj) = value.as_object() else {
        p.push(
            path,
            format!("a binding must be an object, found {}", type_name(value)),
        );
        return None;
    };
    let before = p.0.len();
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "key" | "backend" | "schemaId" | "schemaVersion" | "configKey" | "label" | "shareable"
        ) {
            p.push(&path_key(path, k), "unknown binding field (expected key, backend, schemaId, schemaVersion, configKey, label, shareable)");
        }
    }
    let key = required_string(obj, path, "key", p, |s| {
        is_valid_binding_key(s)
            .then_some(())
            .ok_or("use letters, digits, '_' or '-' (start with a letter, at most 32)")
    });
    let backend = match obj.get("backend") {
        None => {
            p.push(
                &format!("{path}.backend"),
                "required: \"d1-json\" or \"r2-assets\"",
            );
            None
        }
        Some(Value::String(s)) if s == "d1-json" => Some(Backend::D1Json),
        Some(Value::String(s)) if s == "r2-assets" => Some(Backend::R2Assets),
        Some(v) => {
            let found = v
                .as_str()
                .map(shown)
                .unwrap_or_else(|| type_name(v).to_string());
            p.push(
                &format!("{path}.backend"),
                format!("must be \"d1-json\" or \"r2-assets\", found {found}"),
            );
            None
        }
    };
    let schema_id = required_string(obj, path, "schemaId", p, |s| {
        is_valid_schema_id(s).then_some(()).ok_or(
            "use letters, digits, '.', '_' or '-' (start with a letter or digit, at most 128)",
        )
    });
    let schema_version = match obj.get("schemaVersion") {
        None => {
            p.push(&format!("{path}.schemaVersion"), "required: an integer ≥ 1");
            None
        }
        Some(Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) if v >= 1 => Some(v),
            _ => {
                p.push(
                    &format!("{path}.schemaVersion"),
                    format!("must be an integer from 1 to {}, found {n}", u32::MAX),
                );
                None
            }
        },
        Some(v) => {
            p.push(
                &format!("{path}.schemaVersion"),
                format!("must be an integer ≥ 1, found {}", type_name(v)),
            );
            None
        }
    };
    let config_key = optional_string(obj, path, "configKey", p, |s| {
        is_valid_config_key(s).then_some(()).ok_or("use letters, digits and _ (start with a letter or _, at most 64, not starting with __)")
    });
    let label = optional_string(obj, path, "label", p, |s| {
        if s.trim().is_empty() {
            Err("must not be empty")
        } else if s.chars().count() > MAX_LABEL_CHARS {
            Err("at most 200 characters")
        } else if s.chars().any(char::is_control) {
            Err("must not contain control characters")
        } else {
            Ok(())
        }
    });
    let shareable = match obj.get("shareable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            p.push(
                &format!("{path}.shareable"),
                format!("must be a boolean, found {}", type_name(v)),
            );
            false
        }
    };
    if p.0.len() != before {
        return None;
    }
    Some(Binding {
        key: key?,
        backend: backend?,
        schema_id: schema_id?,
        schema_version: schema_version?,
        config_key,
        label,
        shareable,
    })
}

fn required_string(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
    p: &mut Problems,
    check: impl Fn(&str) -> Result<(), &'static str>,
) -> Option<String> {
    let fpath = format!("{path}.{field}");
    match obj.get(field) {
        None => {
            p.push(&fpath, "required");
            None
        }
        Some(v) => string_value(v, &fpath, p, check),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
    p: &mut Problems,
    check: impl Fn(&str) -> Result<(), &'static str>,
) -> Option<String> {
    let fpath = format!("{path}.{field}");
    obj.get(field)
        .and_then(|v| string_value(v, &fpath, p, check))
}

fn string_value(
    v: &Value,
    path: &str,
    p: &mut Problems,
    check: impl Fn(&str) -> Result<(), &'static str>,
) -> Option<String> {
    match v {
        Value::String(s) => match check(s) {
            Ok(()) => Some(s.clone()),
            Err(why) => {
                p.push(path, format!("invalid value {}: {why}", shown(s)));
                None
            }
        },
        other => {
            p.push(
                path,
                format!("must be a string, found {}", type_name(other)),
            );
            None
        }
    }
}

fn parse_collection(value: &Value, path: &str, p: &mut Problems) -> Option<CollectionDecl> {
    let Some(obj) = value.as_object() else {
        p.push(
            path,
            format!(
                "a collection declaration must be an object like {{\"indexes\": [...]}}, found {}",
                type_name(value)
            ),
        );
        return None;
    };
    for k in obj.keys() {
        if k != "indexes" {
            p.push(
                &path_key(path, k),
                "unknown collection field (expected indexes)",
            );
        }
    }
    let mut indexes = Vec::new();
    let ipath = format!("{path}.indexes");
    match obj.get("indexes") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_INDEXES {
                p.push(
                    &ipath,
                    format!("at most {MAX_INDEXES} indexes per collection"),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("{ipath}[{i}]");
                if let Some(index) = parse_index(item, &path, p) {
                    if seen.insert(index.clone()) {
                        indexes.push(index);
                    } else {
                        p.push(&path, "duplicate index");
                    }
                }
            }
        }
        Some(v) => p.push(&ipath, format!("must be an array, found {}", type_name(v))),
    }
    Some(CollectionDecl { indexes })
}

fn field_ok(s: &str, path: &str, p: &mut Problems) -> bool {
    if is_valid_field_path(s) {
        return true;
    }
    p.push(
        path,
        format!(
            "invalid field name {}: use letters, digits and _ (start with a letter or _), dotted for nested fields (at most {MAX_FIELD_SEGMENTS} segments of 64), no segment starting with __",
            shown(s)
        ),
    );
    false
}

fn parse_index(value: &Value, path: &str, p: &mut Problems) -> Option<Index> {
    match value {
        Value::String(s) => field_ok(s, path, p).then(|| Index::Single(s.clone())),
        Value::Array(items) => {
            let mut ok = true;
            if items.len() < 2 {
                p.push(path, "a composite index needs at least 2 fields (write a single-field index as a string)");
                ok = false;
            }
            if items.len() > MAX_COMPOSITE_FIELDS {
                p.push(
                    path,
                    format!("a composite index has at most {MAX_COMPOSITE_FIELDS} fields"),
                );
                ok = false;
            }
            let mut fields = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let fpath = format!("{path}[{i}]");
                match item {
                    Value::String(s) => {
                        if !field_ok(s, &fpath, p) {
                            ok = false;
                        } else if fields.contains(s) {
                            p.push(
                                &fpath,
                                format!("field {} appears twice in this index", shown(s)),
                            );
                            ok = false;
                        } else {
                            fields.push(s.clone());
                        }
                    }
                    other => {
                        p.push(
                            &fpath,
                            format!("must be a field name string, found {}", type_name(other)),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(Index::Composite(fields))
        }
        other => {
            p.push(
                path,
                format!(
                    "an index is a field name or an array of field names, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The paths of every problem, in report order.
    fn paths(v: Value) -> Vec<String> {
        let err = Manifest::parse(&v).expect_err("manifest should be invalid");
        assert_eq!(err.code, ErrorCode::InvalidManifest);
        let detail = err.detail.expect("detail lists problems");
        detail
            .as_array()
            .expect("detail is an array")
            .iter()
            .map(|p| {
                assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()));
                p["path"].as_str().expect("path").to_string()
            })
            .collect()
    }

    fn dynamic(bindings: Value) -> Value {
        json!({"id": "w", "widgetType": "dynamic", "storage": {"bindings": bindings}})
    }

    fn notes() -> Value {
        json!({"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true})
    }

    #[test]
    fn seed_000_document_example() {
        let mut v = json!({
            "widgetType": "dynamic",
            "storage": {"bindings": [{"key": "primary", "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1, "shareable": true}]}
        });
        // Verbatim, as a widget author would copy it: no id is needed without collections.
        assert_eq!(Manifest::parse(&v).unwrap().id, None);
        v["id"] = json!("notes");
        let m = Manifest::parse(&v).unwrap();
        assert_eq!(m.id.as_deref(), Some("notes"));
        assert_eq!(m.widget_type, WidgetType::Dynamic);
        assert_eq!(
            m.bindings,
            [Binding {
                key: "primary".into(),
                backend: Backend::D1Json,
                schema_id: "notes.plaintext".into(),
                schema_version: 1,
                config_key: None,
                label: None,
                shareable: true,
            }]
        );
        assert!(m.collections.is_empty());
        let c = m.contract(&m.bindings[0]);
        assert_eq!(
            (c.backend, c.schema_id.as_str(), c.schema_version),
            (Backend::D1Json, "notes.plaintext", 1)
        );
    }

    #[test]
    fn seed_000_asset_example() {
        let m = Manifest::parse(&json!({
            "id": "gallery",
            "widgetType": "dynamic",
            "storage": {"bindings": [{"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "assetBucketId", "shareable": true}]}
        }))
        .unwrap();
        let b = m.binding_for(Backend::R2Assets).unwrap();
        assert_eq!(b.config_key.as_deref(), Some("assetBucketId"));
        assert!(m.binding_for(Backend::D1Json).is_none());
        assert_eq!(
            m.select_binding(Backend::D1Json, None).unwrap_err().code,
            ErrorCode::NoBinding
        );
        assert_eq!(
            m.select_binding(Backend::R2Assets, Some("assets"))
                .unwrap()
                .key,
            "assets"
        );
        assert_eq!(
            m.select_binding(Backend::D1Json, Some("assets"))
                .unwrap_err()
                .code,
            ErrorCode::NoBinding
        );
        assert_eq!(
            m.select_binding(Backend::R2Assets, Some("nope"))
                .unwrap_err()
                .code,
            ErrorCode::NoBinding
        );
    }

    #[test]
    fn seed_000_mixed_example_needs_dynamic() {
        let mut v = json!({
            "id": "gallery",
            "storage": {"bindings": [
                {"key": "content", "backend": "d1-json", "schemaId": "gallery.settings", "schemaVersion": 1},
                {"key": "assets", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "assetBucketId"}
            ]}
        });
        // Written without widgetType, as a mixed widget's bindings often are, the manifest is
        // basic, and the rule "a basic widget cannot declare bucket storage" applies.
        assert_eq!(paths(v.clone()), ["$.storage.bindings"]);
        v["widgetType"] = json!("basic");
        assert_eq!(paths(v.clone()), ["$.storage.bindings"]);
        v["widgetType"] = json!("dynamic");
        let m = Manifest::parse(&v).unwrap();
        assert_eq!(m.bindings.len(), 2);
        assert!(!m.bindings[0].shareable);
        assert_eq!(m.binding("content").unwrap().backend, Backend::D1Json);
        assert_eq!(m.binding("assets").unwrap().backend, Backend::R2Assets);
    }

    #[test]
    fn seed_003_manifest() {
        let m = Manifest::parse(&json!({
            "slug": "forms",
            "name": "Forms", "version": "1.0.0",
            "storage": {
                "submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]},
                "forms": {"indexes": ["slug"]}
            }
        }))
        .unwrap();
        assert_eq!(m.id.as_deref(), Some("forms"));
        // Collections scope data by plugin id: without one the manifest says so.
        assert_eq!(
            paths(json!({"storage": {"submissions": {"indexes": ["formId"]}}})),
            ["$.id"]
        );
        assert_eq!(
            m.widget_type,
            WidgetType::Basic,
            "collections are fine on basic widgets"
        );
        let s = m.collection("submissions").unwrap();
        assert_eq!(s.indexes.len(), 5);
        assert_eq!(
            s.indexes[3],
            Index::Composite(vec!["formId".into(), "createdAt".into()])
        );
        assert_eq!(s.indexes[3].fields(), ["formId", "createdAt"]);
        assert_eq!(
            m.collection("forms").unwrap().indexes,
            [Index::Single("slug".into())]
        );
        let e = m.collection("comments").unwrap_err();
        assert_eq!(e.code, ErrorCode::UndeclaredCollection);
        assert_eq!(e.detail.unwrap()["collection"], "comments");
        assert_eq!(
            m.collection("__proto__").unwrap_err().code,
            ErrorCode::UndeclaredCollection
        );
        // A collection with no indexes is a valid declaration.
        let m = Manifest::parse(&json!({"id": "x", "storage": {"log": {}}})).unwrap();
        assert!(m.collection("log").unwrap().indexes.is_empty());
    }

    #[test]
    fn every_binding_field_is_checked() {
        // All required fields missing: four problems, one per field.
        assert_eq!(
            paths(dynamic(json!([{}]))),
            [
                "$.storage.bindings[0].key",
                "$.storage.bindings[0].backend",
                "$.storage.bindings[0].schemaId",
                "$.storage.bindings[0].schemaVersion"
            ]
        );
        // Every field with the wrong type or value, all reported at once.
        let got = paths(dynamic(json!([{
            "key": 7, "backend": "s3", "schemaId": "", "schemaVersion": "1",
            "configKey": "a-b", "label": "", "shareable": "yes"
        }])));
        let want: Vec<String> = [
            "key",
            "backend",
            "schemaId",
            "schemaVersion",
            "configKey",
            "label",
            "shareable",
        ]
        .iter()
        .map(|f| format!("$.storage.bindings[0].{f}"))
        .collect();
        assert_eq!(got, want);
        // Optional fields present and valid.
        let m = Manifest::parse(&dynamic(json!([{
            "key": "main-doc_2", "backend": "d1-json", "schemaId": "A.b-c_d", "schemaVersion": 4294967295u64,
            "configKey": "_noteBucket", "label": "Notes — équipe", "shareable": false
        }])))
        .unwrap();
        let b = &m.bindings[0];
        assert_eq!(b.schema_version, u32::MAX);
        assert_eq!(b.config_key.as_deref(), Some("_noteBucket"));
        assert_eq!(b.label.as_deref(), Some("Notes — équipe"));
    }

    #[test]
    fn schema_version_is_an_integer_at_least_one() {
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(1.0),
            json!("1"),
            json!(null),
            json!(4294967296u64),
            json!(u64::MAX),
            json!(1e300),
            json!(true),
        ] {
            let mut b = notes();
            b["schemaVersion"] = bad.clone();
            assert_eq!(
                paths(dynamic(json!([b]))),
                ["$.storage.bindings[0].schemaVersion"],
                "{bad}"
            );
        }
        // 1e400 cannot even be parsed as JSON, so a manifest carrying it fails before us.
        assert!(serde_json::from_str::<Value>(r#"{"schemaVersion": 1e400}"#).is_err());
    }

    #[test]
    fn binding_keys_and_config_keys_are_unique() {
        let a = notes();
        let mut b = notes();
        b["schemaId"] = json!("other");
        assert_eq!(paths(dynamic(json!([a, b]))), ["$.storage.bindings[1].key"]);

        let assets = |key: &str, ck: &str| json!({"key": key, "backend": "r2-assets", "schemaId": "g", "schemaVersion": 1, "configKey": ck});
        assert_eq!(
            paths(dynamic(json!([
                assets("a", "bucket"),
                assets("b", "bucket")
            ]))),
            ["$.storage.bindings[1].configKey"]
        );
        // storageNamespace belongs to the first d1-json binding.
        assert_eq!(
            paths(dynamic(json!([notes(), assets("b", "storageNamespace")]))),
            ["$.storage.bindings[1].configKey"]
        );
        let mut first = notes();
        first["configKey"] = json!("storageNamespace");
        assert!(Manifest::parse(&dynamic(json!([first]))).is_ok());
    }

    #[test]
    fn unknown_fields_inside_the_contract_are_rejected_outside_ignored() {
        let mut b = notes();
        b["schemaVersoin"] = json!(2);
        b["__proto__"] = json!({});
        assert_eq!(
            paths(dynamic(json!([b]))),
            [
                "$.storage.bindings[0].__proto__",
                "$.storage.bindings[0].schemaVersoin"
            ]
        );
        assert_eq!(
            paths(json!({"id": "x", "storage": {"c": {"indexes": [], "unique": ["a"]}}})),
            ["$.storage.c.unique"]
        );
        let m = Manifest::parse(
            &json!({"id": "x", "name": "X", "entry": "index.html", "permissions": ["a"]}),
        )
        .unwrap();
        assert_eq!(m.widget_type, WidgetType::Basic);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got = paths(json!({
            "id": "Bad Id",
            "widgetType": "fancy",
            "storage": {
                "bindings": [notes(), {"key": "primary", "backend": "d1-json", "schemaId": "x", "schemaVersion": 0}, 5],
                "__proto__": {"indexes": ["a"]},
                "ok": {"indexes": ["a'b", ["x"], ["x", "x"], "a", "a", 3]},
                "weird name": []
            }
        }));
        assert_eq!(
            got,
            [
                "$.id",
                "$.widgetType",
                "$.storage.__proto__",
                "$.storage.bindings",
                "$.storage.bindings[1].schemaVersion",
                "$.storage.bindings[2]",
                "$.storage.ok.indexes[0]",
                "$.storage.ok.indexes[1]",
                "$.storage.ok.indexes[2][1]",
                "$.storage.ok.indexes[4]",
                "$.storage.ok.indexes[5]",
                "$.storage[\"weird name\"]",
                "$.storage[\"weird name\"]",
            ]
        );
        let err = Manifest::parse(&json!({"id": 1, "widgetType": 2, "storage": 3})).unwrap_err();
        assert!(err.message.contains("3 problems"), "{}", err.message);
    }

    #[test]
    fn manifest_shapes() {
        assert_eq!(paths(json!([])), ["$"]);
        assert_eq!(paths(json!(null)), ["$"]);
        assert_eq!(paths(json!({"id": "x", "storage": []})), ["$.storage"]);
        assert_eq!(
            paths(json!({"id": "x", "storage": {"bindings": {}}})),
            ["$.storage.bindings"]
        );
        assert_eq!(
            paths(json!({"id": "x", "storage": {"c": {"indexes": "a"}}})),
            ["$.storage.c.indexes"]
        );
        assert_eq!(
            paths(json!({"id": "x", "storage": {"c": ["a"]}})),
            ["$.storage.c"]
        );
        // Empty bindings are fine on a basic widget (nothing is declared).
        assert!(Manifest::parse(&json!({"id": "x", "storage": {"bindings": []}})).is_ok());
    }

    #[test]
    fn widget_id_grammar_and_slug_alias() {
        for ok in ["forms", "a", "0", "my-widget.v2_beta", &"a".repeat(64)] {
            assert!(Manifest::parse(&json!({"id": ok})).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Forms",
            "-a",
            ".a",
            "a b",
            "a/b",
            "a'b",
            "ünï",
            &"a".repeat(65),
            "a\u{0}",
        ] {
            assert_eq!(paths(json!({"id": bad})), ["$.id"], "{bad:?}");
        }
        assert_eq!(paths(json!({"slug": "Forms"})), ["$.slug"]);
        assert_eq!(paths(json!({"id": 5})), ["$.id"]);
        assert_eq!(
            Manifest::parse(&json!({"id": "a", "slug": "a"}))
                .unwrap()
                .id
                .as_deref(),
            Some("a")
        );
        assert_eq!(paths(json!({"id": "a", "slug": "b"})), ["$.slug"]);
    }

    #[test]
    fn widget_type_values() {
        assert_eq!(
            Manifest::parse(&json!({"id": "x", "widgetType": "basic"}))
                .unwrap()
                .widget_type,
            WidgetType::Basic
        );
        assert_eq!(
            Manifest::parse(&json!({"id": "x", "widgetType": "dynamic"}))
                .unwrap()
                .widget_type,
            WidgetType::Dynamic
        );
        for bad in [json!("Dynamic"), json!(""), json!(null), json!(true)] {
            assert_eq!(
                paths(json!({"id": "x", "widgetType": bad})),
                ["$.widgetType"]
            );
        }
    }

    #[test]
    fn hostile_collection_names() {
        for bad in [
            "__proto__",
            "__x",
            "constructor",
            "prototype",
            "then",
            "a-b",
            "a'b",
            "a\"b",
            "$x",
            "a.b",
            "",
            "9a",
            "été",
            "a b",
            "a;DROP",
            &"a".repeat(65),
        ] {
            let v = json!({"id": "x", "storage": {bad: {"indexes": []}}});
            assert_eq!(paths(v), [path_key("$.storage", bad)], "{bad:?}");
        }
        for ok in ["submissions", "_private", "A1", &"a".repeat(64)] {
            assert!(
                Manifest::parse(&json!({"id": "x", "storage": {ok: {}}})).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn hostile_field_names() {
        for bad in [
            "a'b",
            "a\"b",
            "$",
            "$.x",
            "a[0]",
            "__proto__",
            "a.__proto__",
            "constructor",
            "x.prototype",
            "a..b",
            ".a",
            "a.",
            "a.b.c.d.e",
            "",
            " a",
            "formId ",
            "日本",
            "a-b",
            "a\\b",
            "a\u{0}",
            &"a".repeat(65),
        ] {
            let v = json!({"id": "x", "storage": {"c": {"indexes": [bad]}}});
            assert_eq!(paths(v), ["$.storage.c.indexes[0]"], "{bad:?}");
            let v = json!({"id": "x", "storage": {"c": {"indexes": [["ok", bad]]}}});
            assert_eq!(paths(v), ["$.storage.c.indexes[0][1]"], "{bad:?}");
        }
        for ok in ["a", "_a", "author.name", "a.b.c.d", "A_1", &"a".repeat(64)] {
            assert!(
                Manifest::parse(&json!({"id": "x", "storage": {"c": {"indexes": [ok]}}})).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn composite_index_rules() {
        let idx = |i: Value| json!({"id": "x", "storage": {"c": {"indexes": [i]}}});
        assert_eq!(paths(idx(json!([]))), ["$.storage.c.indexes[0]"]);
        assert_eq!(paths(idx(json!(["a"]))), ["$.storage.c.indexes[0]"]);
        assert_eq!(
            paths(idx(json!(["a", "b", "c", "d", "e"]))),
            ["$.storage.c.indexes[0]"]
        );
        assert_eq!(paths(idx(json!(["a", "a"]))), ["$.storage.c.indexes[0][1]"]);
        assert_eq!(paths(idx(json!(["a", 1]))), ["$.storage.c.indexes[0][1]"]);
        assert_eq!(
            paths(idx(json!(["a", ["b"]]))),
            ["$.storage.c.indexes[0][1]"]
        );
        assert_eq!(paths(idx(json!({"a": 1}))), ["$.storage.c.indexes[0]"]);
        assert!(Manifest::parse(&idx(json!(["a", "b", "c", "d"]))).is_ok());
        // Duplicates are rejected; ["a","b"] and ["b","a"] are different indexes.
        let v = json!({"id": "x", "storage": {"c": {"indexes": [["a", "b"], ["b", "a"], ["a", "b"], "a", "a"]}}});
        assert_eq!(
            paths(v),
            ["$.storage.c.indexes[2]", "$.storage.c.indexes[4]"]
        );
    }

    #[test]
    fn limits_on_counts() {
        let many: Vec<Value> = (0..=MAX_INDEXES).map(|i| json!(format!("f{i}"))).collect();
        assert_eq!(
            paths(json!({"id": "x", "storage": {"c": {"indexes": many}}})),
            ["$.storage.c.indexes"]
        );
        let mut storage = Map::new();
        for i in 0..=MAX_COLLECTIONS {
            storage.insert(format!("c{i}"), json!({}));
        }
        assert_eq!(paths(json!({"id": "x", "storage": storage})), ["$.storage"]);
        let bindings: Vec<Value> = (0..=MAX_BINDINGS)
            .map(|i| json!({"key": format!("k{i}"), "backend": "d1-json", "schemaId": "s", "schemaVersion": 1}))
            .collect();
        assert_eq!(paths(dynamic(json!(bindings))), ["$.storage.bindings"]);
    }

    #[test]
    fn stand_alone_collection_declarations() {
        let d = CollectionDecl::from_json(&json!(["formId", ["formId", "createdAt"]])).unwrap();
        assert_eq!(d.indexes.len(), 2);
        let d2 =
            CollectionDecl::from_json(&json!({"indexes": ["formId", ["formId", "createdAt"]]}))
                .unwrap();
        assert_eq!(d, d2);
        // Serialised indexes read back as the same declaration.
        let again = CollectionDecl::from_json(&serde_json::to_value(&d.indexes).unwrap()).unwrap();
        assert_eq!(again, d);
        let e = CollectionDecl::from_json(&json!(["a'b", "ok", "ok"])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidManifest);
        assert_eq!(e.detail.unwrap().as_array().unwrap().len(), 2);
        assert!(CollectionDecl::from_json(&json!("formId")).is_err());
    }

    #[test]
    fn problem_lists_are_bounded() {
        let many: Vec<Value> = (0..100_000).map(|_| json!("a'b")).collect();
        let got = paths(json!({"id": "x", "storage": {"c": {"indexes": many}}}));
        assert_eq!(got.len(), MAX_PROBLEMS + 1);
        assert_eq!(got[0], "$.storage.c.indexes");
        assert_eq!(got[MAX_PROBLEMS], "$");
    }

    #[test]
    fn labels() {
        for bad in [
            json!(""),
            json!("   "),
            json!("a\nb"),
            json!("x".repeat(201)),
            json!(3),
        ] {
            let mut b = notes();
            b["label"] = bad;
            assert_eq!(paths(dynamic(json!([b]))), ["$.storage.bindings[0].label"]);
        }
    }

    #[test]
    fn binding_key_grammar() {
        for bad in [
            "",
            "1a",
            "_a",
            "a:b",
            "a.b",
            "a b",
            "__proto__",
            &"a".repeat(33),
        ] {
            let mut b = notes();
            b["key"] = json!(bad);
            assert_eq!(
                paths(dynamic(json!([b]))),
                ["$.storage.bindings[0].key"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn path_rendering_escapes_hostile_keys() {
        assert_eq!(path_key("$", "a"), "$.a");
        assert_eq!(path_key("$", "a'b"), "$[\"a'b\"]");
        assert_eq!(path_key("$", "a\"]"), "$[\"a\\\"]\"]");
        assert_eq!(path_key("$", ""), "$[\"\"]");
        assert_eq!(path_key("$", "1"), "$[\"1\"]");
    }

    #[test]
    fn long_hostile_input_is_truncated_in_messages() {
        let err = Manifest::parse(&json!({"id": "x".repeat(10_000)})).unwrap_err();
        assert!(err.message.len() < 400, "{}", err.message.len());
    }
}
