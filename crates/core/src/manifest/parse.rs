//! Reading a manifest JSON value into [`Manifest`], collecting every problem with its path.

use super::*;

pub(super) fn parse_manifest(value: &Value, p: &mut Problems) -> Option<Manifest> {
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

pub(super) fn parse_collection(
    value: &Value,
    path: &str,
    p: &mut Problems,
) -> Option<CollectionDecl> {
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
