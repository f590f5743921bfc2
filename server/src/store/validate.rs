//! Input rules for identifiers that arrive in paths, queries and bodies: the service layer's
//! (`monodit_service::validate`), answered as the server's error type.

use crate::error::{AppError, AppResult};
use monodit_service::validate as rules;

/// Longest accepted bucket, instance, schema, mutation or item id (characters).
pub use monodit_service::validate::MAX_ID_CHARS;

/// Checks an identifier: 1..=256 characters, no control characters, no `/` (ids travel as one
/// path segment). `what` names it in the error.
pub fn id(what: &str, value: &str) -> AppResult<()> {
    rules::id(what, value).map_err(AppError::from)
}

/// Checks a schema version (≥ 1).
pub fn schema_version(v: u32) -> AppResult<()> {
    rules::schema_version(v).map_err(AppError::from)
}

/// Checks a bucket id against core's grammar (it travels in URL paths).
pub fn bucket_id(value: &str) -> AppResult<()> {
    rules::bucket_id(value).map_err(AppError::from)
}

/// Checks a schema id against core's manifest grammar.
pub fn schema_id(value: &str) -> AppResult<()> {
    rules::schema_id(value).map_err(AppError::from)
}
