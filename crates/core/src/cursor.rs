//! Opaque, tamper-evident keyset cursors.
//!
//! A cursor is `base64url(version ‖ payload ‖ HMAC-SHA256(secret, version ‖ fingerprint ‖ payload))`
//! (no padding). The payload holds the last item's sort key and id; the query fingerprint
//! ([`QueryFingerprint`]: plugin, collection, user, normalised `where` and `orderBy`) is not
//! stored but is part of the MAC, so a cursor replayed on another query, another collection
//! or another user fails with `INVALID_CURSOR` exactly like a tampered or truncated one.
//! The page size is not part of the fingerprint: a drain loop may change `limit` between pages.
//!
//! The MAC is checked (in constant time, by `hmac`'s `verify_slice`) before the payload is
//! parsed, so hostile bytes never reach the JSON parser. Cursors are not encrypted: the last
//! sort key and id are visible to whoever holds the cursor, which is the same caller that
//! just received those items. The secret must be at least 32 random bytes held by the server;
//! rotating it invalidates outstanding cursors (clients restart their walk).

use crate::errors::{Error, ErrorCode};
use crate::query::SqlValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Format version, first byte of every cursor.
const VERSION: u8 = 1;
/// Longest cursor string [`decode`] looks at (characters).
pub const MAX_CURSOR_LEN: usize = 16 * 1024;
const MAC_LEN: usize = 32;

/// SHA-256 over the parts that identify one query; cursors are bound to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryFingerprint(pub [u8; 32]);

impl std::fmt::Debug for QueryFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueryFingerprint(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl QueryFingerprint {
    /// Hashes the parts with length prefixes, so `("ab","c")` and `("a","bc")` differ.
    pub fn from_parts(parts: &[&[u8]]) -> QueryFingerprint {
        let mut h = Sha256::new();
        h.update(b"monodit-query-v1");
        for part in parts {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        QueryFingerprint(h.finalize().into())
    }
}

/// The position a cursor continues after: the last returned item's sort key and id.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorPayload {
    /// The query this cursor continues (part of the MAC, not of the encoded bytes).
    pub fingerprint: QueryFingerprint,
    /// The `orderBy` field's value (as SQLite's `json_extract` returned it) of the last item;
    /// `None` for queries without `orderBy` (ordered by id only).
    pub sort_key: Option<SqlValue>,
    /// The last item's id (the tiebreaker).
    pub last_id: String,
}

/// Compact wire form; reals travel as their bit pattern so they round-trip exactly.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<WireKey>,
    i: String,
}

#[derive(Serialize, Deserialize)]
enum WireKey {
    #[serde(rename = "n")]
    Null,
    #[serde(rename = "i")]
    Integer(i64),
    #[serde(rename = "r")]
    Real(u64),
    #[serde(rename = "t")]
    Text(String),
    #[serde(rename = "b")]
    Bool(bool),
}

fn mac(secret: &[u8], fingerprint: &QueryFingerprint, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(&fingerprint.0);
    m.update(body);
    m
}

/// Encodes and signs a cursor for the query with `payload.fingerprint`.
pub fn encode(payload: &CursorPayload, secret: &[u8]) -> String {
    let wire = Wire {
        k: payload.sort_key.as_ref().map(|k| match k {
            SqlValue::Null => WireKey::Null,
            SqlValue::Integer(i) => WireKey::Integer(*i),
            SqlValue::Real(r) => WireKey::Real(r.to_bits()),
            SqlValue::Text(t) => WireKey::Text(t.clone()),
            SqlValue::Bool(b) => WireKey::Bool(*b),
        }),
        i: payload.last_id.clone(),
    };
    let mut body = vec![VERSION];
    // Serialising plain strings and integers into a Vec cannot fail.
    body.extend(serde_json::to_vec(&wire).unwrap_or_default());
    let tag = mac(secret, &payload.fingerprint, &body)
        .finalize()
        .into_bytes();
    body.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(body)
}

fn invalid(why: &str) -> Error {
    Error::new(
        ErrorCode::InvalidCursor,
        format!("invalid cursor ({why}): pass back the cursor of the previous page of the same query, unchanged"),
    )
}

/// Verifies and decodes a cursor. `INVALID_CURSOR` when it is malformed, truncated, tampered
/// with, signed with another secret, or belongs to a query with another fingerprint.
pub fn decode(
    cursor: &str,
    secret: &[u8],
    fingerprint: &QueryFingerprint,
) -> Result<CursorPayload, Error> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid("bad length"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("not base64url"))?;
    if bytes.len() < 1 + MAC_LEN {
        return Err(invalid("truncated"));
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    mac(secret, fingerprint, body)
        .verify_slice(tag)
        .map_err(|_| invalid("signature mismatch or another query"))?;
    if body.first() != Some(&VERSION) {
        return Err(invalid("unknown version"));
    }
    let wire: Wire =
        serde_json::from_slice(&body[1..]).map_err(|_| invalid("malformed payload"))?;
    let sort_key = wire.k.map(|k| match k {
        WireKey::Null => SqlValue::Null,
        WireKey::Integer(i) => SqlValue::Integer(i),
        WireKey::Real(bits) => SqlValue::Real(f64::from_bits(bits)),
        WireKey::Text(t) => SqlValue::Text(t),
        WireKey::Bool(b) => SqlValue::Bool(b),
    });
    Ok(CursorPayload {
        fingerprint: *fingerprint,
        sort_key,
        last_id: wire.i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn fp(s: &str) -> QueryFingerprint {
        QueryFingerprint::from_parts(&[s.as_bytes()])
    }

    fn payload(key: Option<SqlValue>) -> CursorPayload {
        CursorPayload {
            fingerprint: fp("q"),
            sort_key: key,
            last_id: "sub_123".into(),
        }
    }

    #[test]
    fn round_trips_every_key_kind_exactly() {
        for key in [
            None,
            Some(SqlValue::Null),
            Some(SqlValue::Integer(i64::MIN)),
            Some(SqlValue::Integer(i64::MAX)),
            Some(SqlValue::Real(-0.0)),
            Some(SqlValue::Real(0.1 + 0.2)),
            Some(SqlValue::Real(f64::MAX)),
            Some(SqlValue::Real(5e-324)),
            Some(SqlValue::Text(String::new())),
            Some(SqlValue::Text("日本語 \"quoted\" \u{10FFFF}".into())),
            Some(SqlValue::Bool(true)),
        ] {
            let p = payload(key);
            let c = encode(&p, SECRET);
            assert!(
                c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
                "{c}"
            );
            let back = decode(&c, SECRET, &fp("q")).unwrap();
            assert_eq!(back.last_id, p.last_id);
            match (&back.sort_key, &p.sort_key) {
                (Some(SqlValue::Real(a)), Some(SqlValue::Real(b))) => {
                    assert_eq!(a.to_bits(), b.to_bits())
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let c = encode(&payload(Some(SqlValue::Text("2024-01-01".into()))), SECRET);
        let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let e = decode(&URL_SAFE_NO_PAD.encode(&b), SECRET, &fp("q")).unwrap_err();
                assert_eq!(e.code, ErrorCode::InvalidCursor, "byte {i}");
            }
        }
    }

    #[test]
    fn truncated_extended_and_garbage_cursors_are_rejected() {
        let c = encode(&payload(Some(SqlValue::Integer(7))), SECRET);
        for n in 0..c.len() {
            assert_eq!(
                decode(&c[..n], SECRET, &fp("q")).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "prefix {n}"
            );
        }
        for bad in [
            format!("{c}A"),
            format!("{c}=="),
            format!("A{c}"),
            c.replace('-', "+").replace('_', "/") + "+/",
            "!!!!".into(),
            " ".into(),
            "null".into(),
            "e30".into(),
            "a".repeat(MAX_CURSOR_LEN + 1),
            "\u{0}".repeat(64),
            "日本".into(),
        ] {
            if bad == c {
                continue;
            }
            assert_eq!(
                decode(&bad, SECRET, &fp("q")).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "{bad:.40}"
            );
        }
    }

    #[test]
    fn foreign_query_or_secret_is_rejected() {
        let c = encode(&payload(None), SECRET);
        assert!(decode(&c, SECRET, &fp("q")).is_ok());
        assert_eq!(
            decode(&c, SECRET, &fp("other")).unwrap_err().code,
            ErrorCode::InvalidCursor
        );
        assert_eq!(
            decode(&c, b"another secret", &fp("q")).unwrap_err().code,
            ErrorCode::InvalidCursor
        );
        assert_eq!(
            decode(&c, b"", &fp("q")).unwrap_err().code,
            ErrorCode::InvalidCursor
        );
    }

    /// Even with a valid MAC (someone holding the secret), bad bodies are errors, not panics.
    #[test]
    fn signed_but_malformed_bodies_are_rejected() {
        for body in [
            &b"\x02{\"i\":\"a\"}"[..],
            b"\x01",
            b"\x01{",
            b"\x01[]",
            b"\x01{\"k\":{\"zz\":1},\"i\":\"a\"}",
            b"\x01{\"i\":5}",
        ] {
            let mut bytes = body.to_vec();
            let tag = mac(SECRET, &fp("q"), body).finalize().into_bytes();
            bytes.extend_from_slice(&tag);
            let e = decode(&URL_SAFE_NO_PAD.encode(&bytes), SECRET, &fp("q")).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidCursor);
        }
    }

    #[test]
    fn fingerprint_parts_are_length_prefixed() {
        let a = QueryFingerprint::from_parts(&[b"ab", b"c"]);
        let b = QueryFingerprint::from_parts(&[b"a", b"bc"]);
        assert_ne!(a, b);
        assert!(format!("{a:?}").starts_with("QueryFingerprint("));
    }

    #[test]
    fn length_and_truncation_bounds_are_exact() {
        assert_eq!(MAX_CURSOR_LEN, 16_384, "16 KiB");
        let fp = QueryFingerprint::from_parts(&[b"q"]);
        let why = |c: &str| decode(c, b"k", &fp).unwrap_err().message;
        assert!(why("").contains("bad length"));
        // At the length bound the cursor is read (and fails later); one over is refused unread.
        let at = "A".repeat(MAX_CURSOR_LEN);
        assert!(!why(&at).contains("bad length"), "{}", why(&at));
        let over = "A".repeat(MAX_CURSOR_LEN + 1);
        assert!(why(&over).contains("bad length"));
        // A tag alone is truncated; one body byte more is checked against the signature.
        let tag_only = URL_SAFE_NO_PAD.encode([0u8; MAC_LEN]);
        assert!(why(&tag_only).contains("truncated"));
        let one_more = URL_SAFE_NO_PAD.encode([0u8; MAC_LEN + 1]);
        assert!(why(&one_more).contains("signature"), "{}", why(&one_more));
    }
}
