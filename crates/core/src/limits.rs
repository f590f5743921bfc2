//! What one user may create on the server, beyond the per-manifest limits of
//! [`crate::manifest`]: registered instances and their stored size, plugin ids with collection
//! declarations, and index declarations.
//!
//! These bound what a single account can make the server keep or build without paying for
//! it. Instance rows (manifest + config) are not charged to the storage quota, and every
//! declared index is a partial index on the one shared `_plugin_storage` table that SQLite
//! checks on every write of every user, so both are capped here instead. Past a count limit
//! the write fails with `LIMIT_EXCEEDED` (403); past a size limit with `PAYLOAD_TOO_LARGE`.
//! Nothing is stored either way.

use crate::errors::{Error, ErrorCode};
use serde_json::json;

/// Registered instances per user (`PUT /v1/instances/{id}` of a new id past it fails).
pub const MAX_INSTANCES_PER_USER: usize = 100;
/// Largest instance `config`, as compact JSON, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// Largest instance `manifest`, as compact JSON, in bytes (it is stored with the instance).
pub const MAX_MANIFEST_BYTES: usize = 32 * 1024;
/// Plugin ids with collection declarations per user.
pub const MAX_DECLARED_PLUGINS_PER_USER: usize = 32;
/// Index declarations per user, summed over all its plugin ids and collections (one manifest
/// may declare up to 32 collections × 16 indexes; one user's union may not pass this).
pub const MAX_INDEX_DECLARATIONS_PER_USER: usize = 128;
/// Default server-wide ceiling on distinct physical index definitions (the server's
/// `Config::max_index_definitions`): past it, declarations are still accepted and queried
/// correctly, but no further index is built.
pub const DEFAULT_MAX_INDEX_DEFINITIONS: usize = 1000;

/// Longest collection item id, in UTF-8 bytes (README, Limits: 1–256 bytes). The server
/// checks it ([`check_item_id`]); the port only refuses what is surely longer (its
/// `MAX_KEY_LEN` of UTF-16 units, `src/protocol.rs`).
pub const MAX_ITEM_ID_BYTES: usize = 256;

/// A collection item id is 1..=[`MAX_ITEM_ID_BYTES`] bytes without control characters; else
/// `INVALID_ARGUMENT`.
pub fn check_item_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ITEM_ID_BYTES || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "item ids are 1..={MAX_ITEM_ID_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// Longest `ctx.cache` key, in UTF-8 bytes: the README's 1 KiB. Cache keys stay in the
/// browser (IndexedDB), so this is checked by the host only: at the port, where a JS string
/// longer than this many UTF-16 units is refused unread (a string never has more UTF-16 units
/// than UTF-8 bytes), and by [`check_cache_key`] on the decoded key.
pub const MAX_CACHE_KEY_BYTES: usize = 1024;

/// A `ctx.cache` key is 1..=[`MAX_CACHE_KEY_BYTES`] bytes of UTF-8; else `INVALID_ARGUMENT`.
pub fn check_cache_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_CACHE_KEY_BYTES {
        return Err(Error::invalid(format!(
            "a cache key is 1 to {MAX_CACHE_KEY_BYTES} bytes of UTF-8 (got {})",
            key.len()
        )));
    }
    Ok(())
}

/// A per-user count limit: `count` things after the write, `limit` allowed. Exactly at the
/// limit passes; past it fails with `LIMIT_EXCEEDED`, `detail` naming the limit.
pub fn check_count(what: &str, count: usize, limit: usize) -> Result<(), Error> {
    if count <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::LimitExceeded,
        format!("one user may hold at most {limit} {what} (this would make {count})"),
    )
    .with_detail(json!({"limit": what, "max": limit, "count": count})))
}

/// A size limit on stored JSON: `bytes` as compact JSON, `limit` allowed. Exactly at the
/// limit passes; past it fails with `PAYLOAD_TOO_LARGE`, `detail` naming the limit.
pub fn check_size(what: &str, bytes: usize, limit: usize) -> Result<(), Error> {
    if bytes <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} may hold at most {limit} bytes of JSON (got {bytes})"),
    )
    .with_detail(json!({"limit": what, "maxBytes": limit, "bytes": bytes})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_sizes_are_the_documented_ones() {
        // README's Limits table and server/README: config 16 KiB, manifest 32 KiB.
        assert_eq!(MAX_CONFIG_BYTES, 16_384);
        assert_eq!(MAX_MANIFEST_BYTES, 32_768);
        assert!(check_size("config", MAX_CONFIG_BYTES, MAX_CONFIG_BYTES).is_ok());
        assert!(check_size("config", MAX_CONFIG_BYTES + 1, MAX_CONFIG_BYTES).is_err());
    }

    #[test]
    fn cache_keys_pass_at_one_kib_and_fail_one_byte_past() {
        assert_eq!(
            MAX_CACHE_KEY_BYTES, 1024,
            "README, Limits: keys up to 1 KiB"
        );
        check_cache_key(&"k".repeat(1024)).unwrap();
        check_cache_key("k").unwrap();
        // 512 two-byte characters are exactly 1 KiB; one more byte is over.
        check_cache_key(&"é".repeat(512)).unwrap();
        for bad in [
            "".to_string(),
            "k".repeat(1025),
            format!("{}k", "é".repeat(512)),
        ] {
            let e = check_cache_key(&bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", bad.len());
        }
    }

    #[test]
    fn item_ids_pass_at_256_bytes_and_fail_one_past() {
        check_item_id(&"i".repeat(MAX_ITEM_ID_BYTES)).unwrap();
        check_item_id("a").unwrap();
        check_item_id(&"é".repeat(128)).unwrap();
        for bad in [
            String::new(),
            "i".repeat(MAX_ITEM_ID_BYTES + 1),
            format!("{}i", "é".repeat(128)),
            "a\nb".to_string(),
            "\u{7f}".to_string(),
        ] {
            let e = check_item_id(&bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn counts_pass_at_the_limit_and_fail_one_past() {
        for limit in [
            MAX_INSTANCES_PER_USER,
            MAX_DECLARED_PLUGINS_PER_USER,
            MAX_INDEX_DECLARATIONS_PER_USER,
        ] {
            assert!(check_count("things", limit, limit).is_ok());
            assert!(check_count("things", 0, limit).is_ok());
            let e = check_count("things", limit + 1, limit).unwrap_err();
            assert_eq!(e.code, ErrorCode::LimitExceeded);
            assert_eq!(e.code.http_status(), 403);
            let d = e.detail.unwrap();
            assert_eq!(d["limit"], "things");
            assert_eq!(d["max"], limit);
            assert_eq!(d["count"], limit + 1);
        }
    }

    #[test]
    fn sizes_pass_at_the_limit_and_fail_one_past() {
        for limit in [MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES] {
            assert!(check_size("config", limit, limit).is_ok());
            let e = check_size("config", limit + 1, limit).unwrap_err();
            assert_eq!(e.code, ErrorCode::PayloadTooLarge);
            assert_eq!(e.detail.unwrap()["maxBytes"], limit);
        }
    }
}
