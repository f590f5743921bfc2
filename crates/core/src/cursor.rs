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
