//! Route paths of the HTTP API: each route's pattern (what the server's router serves, in
//! OpenAPI syntax) and a builder of a concrete path (what the SDK's HTTP client requests).
//!
//! Both sides take them from here so a path cannot drift between `src/http/` and
//! `server/src/http/mod.rs`: a server test checks that the router serves exactly [`TABLE`]
//! and that every built path matches a served route, and a test here that the table in
//! [`crate::api`]'s documentation lists the same routes. Builders percent-encode each variable
//! segment (ids, keys, names) and never add a query string: callers append their own
//! (`?missing=empty`, `?prefix=`), which the route table in [`crate::api`] documents.

use crate::buckets::Backend;
use crate::ops::CollectionMethod;

/// `GET`: liveness, no auth.
pub const HEALTH: &str = "/v1/health";
/// `GET`: the OpenAPI description, no auth.
pub const OPENAPI: &str = "/v1/openapi.json";
/// `GET`: the caller's plan and user id.
pub const ME: &str = "/v1/me";
/// `GET`: bytes used per bucket.
pub const USAGE: &str = "/v1/usage";
/// `GET`: every bucket of the user.
pub const BUCKETS: &str = "/v1/buckets";
/// `DELETE`: one bucket and its data.
pub const BUCKET: &str = "/v1/buckets/{backend}/{bucketId}";
/// `GET`, `PUT`: a bucket's document.
pub const DOCUMENT: &str = "/v1/documents/{bucketId}";
/// `GET`: a document's version and size.
pub const DOCUMENT_META: &str = "/v1/documents/{bucketId}/meta";
/// `POST`: many buckets' metadata at once.
pub const BATCH_META: &str = "/v1/meta";
/// `POST` (upload), `GET` (list): a bucket's assets.
pub const ASSETS: &str = "/v1/assets/{bucketId}";
/// `DELETE`: one asset.
pub const ASSET: &str = "/v1/assets/{bucketId}/{objectKey}";
/// `GET`: a signed download (`?exp=&sig=`), no auth header.
pub const OBJECT: &str = "/v1/objects/{objectKey}";
/// `POST`: starts a resumable upload.
pub const UPLOADS: &str = "/v1/uploads";
/// `GET` (session), `DELETE` (abort): one resumable upload.
pub const UPLOAD: &str = "/v1/uploads/{uploadId}";
/// `PUT`: one part of a resumable upload.
pub const UPLOAD_PART: &str = "/v1/uploads/{uploadId}/parts/{partNumber}";
/// `POST`: completes a resumable upload.
pub const UPLOAD_COMPLETE: &str = "/v1/uploads/{uploadId}/complete";
/// `GET`: the user's registered instances.
pub const INSTANCES: &str = "/v1/instances";
/// `PUT` (register), `DELETE`: one instance.
pub const INSTANCE: &str = "/v1/instances/{instanceId}";
/// `POST`: one collection op ([`CollectionMethod`]).
pub const COLLECTION_OP: &str = "/v1/collections/{pluginId}/{collection}/{op}";
/// `GET`: a page of a plugin's kv entries.
pub const KV: &str = "/v1/kv/{pluginId}";
/// `GET`, `PUT`, `DELETE`: one kv entry.
pub const KV_KEY: &str = "/v1/kv/{pluginId}/{key}";
/// `GET`: every plugin id the user has data or instances for.
pub const PLUGINS: &str = "/v1/plugins";
/// `DELETE`: one plugin id's data.
pub const PLUGIN: &str = "/v1/plugins/{pluginId}";
/// `POST`, dev mode only: a fresh user.
pub const DEV_USERS: &str = "/v1/dev/users";
/// `PUT`, dev mode only: the caller's plan.
pub const DEV_PLAN: &str = "/v1/dev/plan";
/// `PUT`, dev mode only: injected faults.
pub const DEV_FAULTS: &str = "/v1/dev/faults";
/// `POST`, dev mode only: `EXPLAIN QUERY PLAN` of a collection query as planned for the
/// caller (shows whether a declared index serves it).
pub const DEV_EXPLAIN: &str = "/v1/dev/explain/{pluginId}/{collection}";

/// Every route as (method, pattern): what the server serves (dev routes included), and
/// what the table in [`crate::api`]'s documentation lists; tests keep the three equal.
pub const TABLE: &[(&str, &str)] = &[
    ("GET", HEALTH),
    ("GET", OPENAPI),
    ("GET", ME),
    ("GET", USAGE),
    ("GET", BUCKETS),
    ("DELETE", BUCKET),
    ("GET", DOCUMENT),
    ("PUT", DOCUMENT),
    ("GET", DOCUMENT_META),
    ("POST", BATCH_META),
    ("POST", ASSETS),
    ("GET", ASSETS),
    ("DELETE", ASSET),
    ("GET", OBJECT),
    ("POST", UPLOADS),
    ("GET", UPLOAD),
    ("DELETE", UPLOAD),
    ("PUT", UPLOAD_PART),
    ("POST", UPLOAD_COMPLETE),
    ("GET", INSTANCES),
    ("PUT", INSTANCE),
    ("DELETE", INSTANCE),
    ("POST", COLLECTION_OP),
    ("GET", KV),
    ("GET", KV_KEY),
    ("PUT", KV_KEY),
    ("DELETE", KV_KEY),
    ("GET", PLUGINS),
    ("DELETE", PLUGIN),
    ("POST", DEV_USERS),
    ("PUT", DEV_PLAN),
    ("PUT", DEV_FAULTS),
    ("POST", DEV_EXPLAIN),
];

/// Percent-encodes one path segment: everything but `A-Z a-z 0-9 - _ . ~` (RFC 3986's
/// unreserved characters), so a `/`, `?`, `#` or `%` in an id or key stays inside its segment.
pub fn segment(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// [`BUCKET`] for one bucket.
pub fn bucket(backend: Backend, bucket_id: &str) -> String {
    format!("/v1/buckets/{}/{}", backend.as_str(), segment(bucket_id))
}

/// [`DOCUMENT`] for one bucket.
pub fn document(bucket_id: &str) -> String {
    format!("/v1/documents/{}", segment(bucket_id))
}

/// [`DOCUMENT_META`] for one bucket.
pub fn document_meta(bucket_id: &str) -> String {
    format!("/v1/documents/{}/meta", segment(bucket_id))
}

/// [`ASSETS`] for one bucket.
pub fn assets(bucket_id: &str) -> String {
    format!("/v1/assets/{}", segment(bucket_id))
}

/// [`ASSET`] for one asset.
pub fn asset(bucket_id: &str, object_key: &str) -> String {
    format!("/v1/assets/{}/{}", segment(bucket_id), segment(object_key))
}

/// [`OBJECT`] for one stored object (the server signs it with `?exp=&sig=`).
pub fn object(object_key: &str) -> String {
    format!("/v1/objects/{}", segment(object_key))
}

/// [`UPLOAD`] for one upload session.
pub fn upload(upload_id: &str) -> String {
    format!("/v1/uploads/{}", segment(upload_id))
}

/// [`UPLOAD_PART`] for one part (numbered from 1).
pub fn upload_part(upload_id: &str, part_number: u32) -> String {
    format!("/v1/uploads/{}/parts/{part_number}", segment(upload_id))
}

/// [`UPLOAD_COMPLETE`] for one upload session.
pub fn upload_complete(upload_id: &str) -> String {
    format!("/v1/uploads/{}/complete", segment(upload_id))
}

/// [`INSTANCE`] for one instance.
pub fn instance(instance_id: &str) -> String {
    format!("/v1/instances/{}", segment(instance_id))
}

/// [`COLLECTION_OP`] for one op on one collection of a plugin.
pub fn collection_op(plugin_id: &str, collection: &str, method: CollectionMethod) -> String {
    format!(
        "/v1/collections/{}/{}/{}",
        segment(plugin_id),
        segment(collection),
        method.as_str()
    )
}

/// [`KV`] for one plugin.
pub fn kv(plugin_id: &str) -> String {
    format!("/v1/kv/{}", segment(plugin_id))
}

/// [`KV_KEY`] for one key of a plugin.
pub fn kv_key(plugin_id: &str, key: &str) -> String {
    format!("/v1/kv/{}/{}", segment(plugin_id), segment(key))
}

/// [`PLUGIN`] for one plugin id.
pub fn plugin(plugin_id: &str) -> String {
    format!("/v1/plugins/{}", segment(plugin_id))
}

/// [`DEV_EXPLAIN`] for one collection of a plugin.
pub fn dev_explain(plugin_id: &str, collection: &str) -> String {
    format!(
        "/v1/dev/explain/{}/{}",
        segment(plugin_id),
        segment(collection)
    )
}

/// Whether `path` (no query string) is an instance of `pattern`: the same number of segments,
/// literal segments equal, each `{name}` segment non-empty. The server's route test uses it.
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// One concrete path per route, built by this module's builders from awkward sample values
/// (`/`, `?`, `%`, spaces, non-ASCII): what the server's route test checks against its router.
pub fn samples() -> Vec<(&'static str, String)> {
    let id = "a/b?c%d e#é";
    let mut out = vec![
        ("GET", HEALTH.to_string()),
        ("GET", OPENAPI.to_string()),
        ("GET", ME.to_string()),
        ("GET", USAGE.to_string()),
        ("GET", BUCKETS.to_string()),
        ("DELETE", bucket(Backend::D1Json, id)),
        ("DELETE", bucket(Backend::R2Assets, id)),
        ("GET", document(id)),
        ("PUT", document(id)),
        ("GET", document_meta(id)),
        ("POST", BATCH_META.to_string()),
        ("POST", assets(id)),
        ("GET", assets(id)),
        ("DELETE", asset(id, id)),
        ("GET", object(id)),
        ("POST", UPLOADS.to_string()),
        ("GET", upload(id)),
        ("DELETE", upload(id)),
        ("PUT", upload_part(id, 1)),
        ("POST", upload_complete(id)),
        ("GET", INSTANCES.to_string()),
        ("PUT", instance(id)),
        ("DELETE", instance(id)),
        ("GET", kv(id)),
        ("GET", kv_key(id, id)),
        ("PUT", kv_key(id, id)),
        ("DELETE", kv_key(id, id)),
        ("GET", PLUGINS.to_string()),
        ("DELETE", plugin(id)),
        ("POST", DEV_USERS.to_string()),
        ("PUT", DEV_PLAN.to_string()),
        ("PUT", DEV_FAULTS.to_string()),
        ("POST", dev_explain(id, id)),
    ];
    for m in CollectionMethod::ALL {
        out.push(("POST", collection_op(id, id, m)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_unreserved_and_encode_the_rest() {
        assert_eq!(segment("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(segment("a/b?c%d e#"), "a%2Fb%3Fc%25d%20e%23");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment(""), "");
        assert_eq!(segment("\u{7f}\u{0}"), "%7F%00");
    }

    #[test]
    fn builders_fill_their_patterns() {
        let cases = [
            (BUCKET, bucket(Backend::R2Assets, "x y")),
            (DOCUMENT, document("b")),
            (DOCUMENT_META, document_meta("b")),
            (ASSETS, assets("b")),
            (ASSET, asset("b", "k")),
            (OBJECT, object("k")),
            (UPLOAD, upload("u")),
            (UPLOAD_PART, upload_part("u", 7)),
            (UPLOAD_COMPLETE, upload_complete("u")),
            (INSTANCE, instance("i")),
            (
                COLLECTION_OP,
                collection_op("p", "c", CollectionMethod::GetMany),
            ),
            (KV, kv("p")),
            (KV_KEY, kv_key("p", "settings:a/b")),
            (PLUGIN, plugin("p")),
        ];
        for (pattern, path) in cases {
            assert!(matches(pattern, &path), "{path} is not {pattern}");
        }
        assert_eq!(
            bucket(Backend::R2Assets, "x y"),
            "/v1/buckets/r2-assets/x%20y"
        );
        assert_eq!(upload_part("u", 7), "/v1/uploads/u/parts/7");
        assert_eq!(
            collection_op("p", "c", CollectionMethod::GetMany),
            "/v1/collections/p/c/getMany"
        );
        assert_eq!(kv_key("p", "settings:a/b"), "/v1/kv/p/settings%3Aa%2Fb");
    }

    #[test]
    fn matching_is_by_segment() {
        assert!(matches(KV_KEY, "/v1/kv/p/k"));
        assert!(!matches(KV_KEY, "/v1/kv/p/"), "an empty variable segment");
        assert!(!matches(KV_KEY, "/v1/kv/p"), "too few segments");
        assert!(!matches(KV_KEY, "/v1/kv/p/k/x"), "too many segments");
        assert!(!matches(KV, "/v1/kw/p"), "a literal segment differs");
        assert!(matches(ME, ME));
        assert!(!matches(ME, "/v1/me/"));
        // A variable is `{name}` whole: a half-braced segment is a literal.
        assert!(!matches("/v1/{x", "/v1/y"));
        assert!(!matches("/v1/x}", "/v1/y"));
        assert!(matches("/v1/{x", "/v1/{x"));
    }

    /// The documented table in `api.rs` lists exactly these routes (its rows may show a
    /// query string after the path).
    #[test]
    fn the_api_doc_table_lists_every_route() {
        let doc = include_str!("api.rs");
        let mut documented = std::collections::BTreeSet::new();
        for row in doc.lines().filter_map(|l| l.strip_prefix("//! | ")) {
            let mut cells = row.split(" | ");
            let (Some(method), Some(path)) = (cells.next(), cells.next()) else {
                continue;
            };
            if let Some(path) = path.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                let path = path.split('?').next().unwrap_or(path);
                documented.insert((method.to_string(), path.to_string()));
            }
        }
        let table: std::collections::BTreeSet<_> = TABLE
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, table);
    }

    /// Each route has a sample path, and each sample lands on exactly one route of its method.
    #[test]
    fn samples_cover_the_table() {
        let samples = samples();
        for (method, pattern) in TABLE {
            assert!(
                samples
                    .iter()
                    .any(|(m, p)| m == method && matches(pattern, p)),
                "{method} {pattern} has no sample"
            );
        }
        for (method, path) in &samples {
            let n = TABLE
                .iter()
                .filter(|(m, p)| m == method && matches(p, path))
                .count();
            assert_eq!(n, 1, "{method} {path}");
        }
    }

    #[test]
    fn samples_keep_awkward_ids_in_one_segment() {
        let all = samples();
        assert_eq!(all.len(), 33 + CollectionMethod::ALL.len());
        for (_, path) in &all {
            assert!(path.starts_with("/v1/"), "{path}");
            assert!(!path.contains(['?', '#', ' ']), "{path}");
        }
    }
}
