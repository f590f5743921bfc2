//! Plugin key-value storage, `ctx.kv` (README, For widget authors): by convention user
//! settings under a `settings:` prefix, internal state under `state:`.
//!
//! One small JSON value per key, scoped like collections: per user and plugin id (the
//! manifest's `id` or `slug`). Values count toward the user's quota. The server is the truth
//! (no local mirror): KV holds settings and state that must not fork between devices.
//!
//! Wire (see [`crate::api`]): `GET /v1/kv/{pluginId}?prefix=` → [`KvList`],
//! `GET|PUT|DELETE /v1/kv/{pluginId}/{key}` → [`KvEntry`] / [`PutKv`] → [`KvEntry`] /
//! `{deleted: bool}`.

use crate::errors::{Error, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest key, in bytes (UTF-8).
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, as compact JSON, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Most entries one list answer carries (`hasMore` says when there are more).
pub const MAX_LIST: usize = 1000;
/// Most value bytes (compact JSON) one list answer carries: [`MAX_LIST`] values of
/// [`MAX_VALUE_BYTES`] would be 256 MiB in one answer, so a list also stops (with `hasMore`)
/// before its values pass this budget. The first matching entry is always included.
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;
/// Most entries one `ctx.kv.list()` call gathers over all pages (the SDK follows `after`);
/// beyond it the call fails with PAYLOAD_TOO_LARGE instead of silently cutting the answer.
pub const MAX_LIST_TOTAL: usize = 10_000;

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KvEntry {
    /// The key (`settings:theme`).
    pub key: String,
    /// The value (any JSON).
    pub value: Value,
}

/// `PUT /v1/kv/{pluginId}/{key}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutKv {
    /// The value to store (any JSON except absent).
    pub value: Value,
}

/// `GET /v1/kv/{pluginId}?prefix=` answer: entries in key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KvList {
    /// At most [`MAX_LIST`] entries whose key starts with the prefix, in key order.
    pub entries: Vec<KvEntry>,
    /// Whether more entries match than were returned.
    pub has_more: bool,
}

/// A key is 1..=[`MAX_KEY_BYTES`] bytes without control characters. INVALID_ARGUMENT.
pub fn validate_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("a kv key is 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "a kv key cannot contain control characters",
        ));
    }
    Ok(())
}

/// A prefix is like a key but may be empty (list everything).
pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix)
}

/// The exclusive upper bound of the keys that start with `prefix`, so a prefix match is the
/// range `prefix <= key < bound` (an index range in SQL, with no `LIKE` wildcards: `%` and
/// `_` in a prefix are plain characters). `None` when there is no bound (empty prefix, or a
/// prefix made only of U+10FFFF): every key from `prefix` on matches.
///
/// UTF-8 byte order (SQLite's BINARY collation) is code point order, so the bound is the
/// prefix with its last character replaced by the next scalar value (skipping surrogates),
/// dropping trailing U+10FFFF first.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The stored size of a value (compact JSON); PAYLOAD_TOO_LARGE above [`MAX_VALUE_BYTES`].
pub fn value_size(value: &Value) -> Result<usize, Error> {
    let n = serde_json::to_vec(value)
        .map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("kv value: {e}")))?
        .len();
    if n > MAX_VALUE_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("a kv value is at most {MAX_VALUE_BYTES} bytes as JSON ({n} given)"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_prefixes_and_sizes() {
        for ok in [
            "settings:theme",
            "state:lastRun",
            "ü",
            &"k".repeat(MAX_KEY_BYTES),
        ] {
            validate_key(ok).unwrap();
        }
        for bad in ["", "a\nb", "\u{0}", &"k".repeat(MAX_KEY_BYTES + 1)] {
            assert_eq!(
                validate_key(bad).unwrap_err().code,
                ErrorCode::InvalidArgument
            );
        }
        validate_prefix("").unwrap();
        validate_prefix("settings:").unwrap();
        assert!(validate_prefix("\t").is_err());
        assert_eq!(value_size(&json!({"a": 1})).unwrap(), 7);
        let big = json!("x".repeat(MAX_VALUE_BYTES));
        assert_eq!(
            value_size(&big).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn prefix_end_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("settings:").as_deref(), Some("settings;"));
        assert_eq!(prefix_end("a%_").as_deref(), Some("a%`"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        let keys = [
            "",
            "a",
            "a%",
            "a%_",
            "a%_x",
            "a%`",
            "a%a",
            "ab",
            "a\u{7F}",
            "a\u{FF}",
            "a\u{FFFF}",
            "a\u{10FFFF}",
            "b",
            "settings:",
            "settings:theme",
            "settings;",
            "state:x",
            "ü",
            "üb",
        ];
        for prefix in keys.iter().filter(|p| !p.is_empty()) {
            let end = prefix_end(prefix);
            for key in keys {
                let in_range = key >= *prefix && end.as_deref().is_none_or(|e| key < e);
                assert_eq!(in_range, key.starts_with(prefix), "{prefix:?} {key:?}");
            }
        }
    }

    #[test]
    fn wire_shapes_are_camel_case() {
        let l = KvList {
            entries: vec![KvEntry {
                key: "settings:a".into(),
                value: json!(1),
            }],
            has_more: false,
        };
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"entries": [{"key": "settings:a", "value": 1}], "hasMore": false})
        );
    }

    #[test]
    fn a_value_of_exactly_the_limit_passes_and_one_byte_more_fails() {
        // A string's JSON is its characters and two quotes.
        let at = json!("x".repeat(MAX_VALUE_BYTES - 2));
        assert_eq!(value_size(&at).unwrap(), MAX_VALUE_BYTES);
        let past = json!("x".repeat(MAX_VALUE_BYTES - 1));
        let e = value_size(&past).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
        assert!(e
            .message
            .contains(&format!("({} given)", MAX_VALUE_BYTES + 1)));
    }

    #[test]
    fn the_documented_limits() {
        // README "Limits": a value up to 256 KiB, a list answer up to 8 MiB of values.
        assert_eq!(MAX_VALUE_BYTES, 262_144);
        assert_eq!(MAX_LIST_BYTES, 8_388_608);
    }
}
