//! Input rules for identifiers that arrive in paths, queries and bodies. Each failure is
//! INVALID_ARGUMENT naming the field.

use monodit_core::Error;

/// Longest accepted bucket, instance, schema, mutation or item id (characters).
pub const MAX_ID_CHARS: usize = 256;

/// Longest idempotency key (characters).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// Checks an identifier: 1..=256 characters, no control characters, no `/` (ids travel as one
/// path segment). `what` names it in the error.
pub fn id(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(Error::invalid(format!(
            "{what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() || c == '/') {
        return Err(Error::invalid(format!(
            "{what} must not contain control characters or '/'"
        )));
    }
    Ok(())
}

/// Checks a schema version (≥ 1).
pub fn schema_version(v: u32) -> Result<(), Error> {
    if v == 0 {
        return Err(Error::invalid("schemaVersion must be an integer ≥ 1"));
    }
    Ok(())
}

/// Checks a bucket id against core's grammar (it travels in URL paths).
pub fn bucket_id(value: &str) -> Result<(), Error> {
    monodit_core::buckets::validate_bucket_id(value)
}

/// Checks a schema id against core's manifest grammar.
pub fn schema_id(value: &str) -> Result<(), Error> {
    if monodit_core::manifest::is_valid_schema_id(value) {
        Ok(())
    } else {
        Err(Error::invalid(
            "schemaId must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        ))
    }
}

/// Checks an idempotency key (`Idempotency-Key` header, a session's `idempotencyKey`):
/// 1-128 characters of `[A-Za-z0-9_-]`.
pub fn idempotency_key(key: &str) -> Result<(), Error> {
    let ok = (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "an idempotency key is 1 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monodit_core::ErrorCode;

    fn code(r: Result<(), Error>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn ids_are_one_to_256_characters_without_controls_or_slashes() {
        assert!(id("x", "a").is_ok());
        assert!(
            id("x", &"é".repeat(MAX_ID_CHARS)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(code(id("x", "")), ErrorCode::InvalidArgument);
        assert_eq!(
            code(id("x", &"a".repeat(MAX_ID_CHARS + 1))),
            ErrorCode::InvalidArgument
        );
        assert!(id("x", "a/b").is_err());
        assert!(id("x", "a\u{0}b").is_err());
        assert!(id("x", "a\nb").is_err());
        let e = id("mutationId", "").unwrap_err();
        assert!(e.message.contains("mutationId"), "{}", e.message);
    }

    #[test]
    fn schema_versions_start_at_one() {
        assert!(schema_version(0).is_err());
        assert!(schema_version(1).is_ok());
        assert!(schema_version(u32::MAX).is_ok());
    }

    #[test]
    fn schema_and_bucket_ids_follow_core() {
        assert!(schema_id("notes.plaintext").is_ok());
        assert!(schema_id(&"a".repeat(128)).is_ok());
        assert!(schema_id(&"a".repeat(129)).is_err());
        assert!(schema_id(".x").is_err());
        assert!(schema_id("").is_err());
        assert!(bucket_id("notes-1").is_ok());
        assert_eq!(code(bucket_id("../x")), ErrorCode::InvalidArgument);
        assert!(bucket_id("").is_err());
    }

    #[test]
    fn idempotency_keys_are_1_to_128_safe_characters() {
        assert!(idempotency_key("a").is_ok());
        assert!(idempotency_key("A-z_09").is_ok());
        assert!(idempotency_key(&"k".repeat(128)).is_ok());
        assert!(idempotency_key(&"k".repeat(129)).is_err());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("a b").is_err());
        assert!(idempotency_key("a.b").is_err());
        assert!(idempotency_key("é").is_err());
    }
}
