//! Input rules for identifiers that arrive in paths, queries and bodies.

use crate::error::{AppError, AppResult};

/// Longest accepted bucket, instance, schema, mutation or item id (characters).
pub const MAX_ID_CHARS: usize = 256;

/// Checks an identifier: 1..=256 characters, no control characters, no `/` (ids travel as one
/// path segment). `what` names it in the error.
pub fn id(what: &str, value: &str) -> AppResult<()> {
    if value.is_empty() {
        return Err(AppError::invalid(format!("{what} must not be empty")));
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(AppError::invalid(format!(
            "{what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() || c == '/') {
        return Err(AppError::invalid(format!(
            "{what} must not contain control characters or '/'"
        )));
    }
    Ok(())
}

/// Checks a schema version (≥ 1).
pub fn schema_version(v: u32) -> AppResult<()> {
    if v == 0 {
        return Err(AppError::invalid("schemaVersion must be an integer ≥ 1"));
    }
    Ok(())
}

/// Checks a bucket id against core's grammar (it travels in URL paths).
pub fn bucket_id(value: &str) -> AppResult<()> {
    monodit_core::buckets::validate_bucket_id(value).map_err(AppError::from)
}

/// Checks a schema id against core's manifest grammar.
pub fn schema_id(value: &str) -> AppResult<()> {
    if monodit_core::manifest::is_valid_schema_id(value) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "schemaId must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        ))
    }
}
