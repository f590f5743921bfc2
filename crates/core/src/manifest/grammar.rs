//! The grammars of the names a manifest holds (ids, keys, collection and field names).

use super::{BINDINGS_KEY, MAX_FIELD_SEGMENTS};

pub(super) fn ident_segment(s: &str, max: usize) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    s.len() <= max && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn js_hazard(s: &str) -> bool {
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
