//! The object store behind r2-assets and the signed download URLs that point into it.
//!
//! `--objects DIR` uses a local directory; `--objects s3://bucket[/prefix]` uses any
//! S3-compatible store (Cloudflare R2, MinIO, AWS) configured from the usual `AWS_*`
//! environment variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`), so moving to R2 is a configuration change.

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::sync::Arc;

/// Builds the object store named by `spec`.
pub fn open(spec: &str) -> Result<Arc<dyn ObjectStore>, String> {
    if let Some(rest) = spec.strip_prefix("s3://") {
        return open_s3(rest);
    }
    std::fs::create_dir_all(spec).map_err(|e| format!("cannot create {spec}: {e}"))?;
    let fs = LocalFileSystem::new_with_prefix(spec).map_err(|e| e.to_string())?;
    Ok(Arc::new(fs))
}

#[cfg(feature = "s3")]
fn open_s3(rest: &str) -> Result<Arc<dyn ObjectStore>, String> {
    use object_store::aws::AmazonS3Builder;
    use object_store::prefix::PrefixStore;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("--objects s3://BUCKET[/prefix] needs a bucket name".into());
    }
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| e.to_string())?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(PrefixStore::new(s3, prefix)))
    }
}

#[cfg(not(feature = "s3"))]
fn open_s3(_rest: &str) -> Result<Arc<dyn ObjectStore>, String> {
    Err("this build has no S3 support: rebuild monodit-server with the `s3` feature".into())
}

/// The prefix every asset object lives under.
pub const ASSETS_PREFIX: &str = "assets";

/// Where an object key lives in the store.
pub fn path_of(object_key: &str) -> ObjectPath {
    ObjectPath::from(format!("{ASSETS_PREFIX}/{object_key}"))
}

/// The directory of a local object store (`None` for `s3://`). The sweep reads it directly:
/// `object_store` hides the `key#n` staging files an interrupted write leaves there.
pub fn local_root(spec: &str) -> Option<std::path::PathBuf> {
    (!spec.starts_with("s3://")).then(|| std::path::PathBuf::from(spec))
}

/// Signed download URLs (`sig = HMAC-SHA256(secret, "{key}\n{exp}")`, hex), from the service
/// layer so every backend signs alike.
pub use monodit_service::signing::{url_expiry, SignatureError, Signer};

/// The stored content type and the inline allow-list, from the service layer so every
/// backend decides alike.
pub use monodit_service::assets::{inline_allowed, normalize_content_type};

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "s3")]
    #[test]
    fn s3_urls_select_an_s3_store_without_network() {
        // Credentials and endpoint come from AWS_* at request time; building needs none.
        assert!(open("s3://media/monodit").is_ok());
        assert!(open("s3://").is_err());
    }

    #[test]
    fn local_directories_are_created() {
        let dir = std::env::temp_dir().join(format!("monodit-objects-{}", uuid::Uuid::new_v4()));
        assert!(open(dir.to_str().unwrap()).is_ok());
        assert!(dir.is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn svg_and_html_are_not_inline() {
        assert!(inline_allowed("image/png"));
        assert!(inline_allowed("video/mp4"));
        assert!(inline_allowed("application/pdf"));
        assert!(!inline_allowed("image/svg+xml"));
        assert!(!inline_allowed("text/html"));
        assert!(!inline_allowed("application/xhtml+xml"));
    }

    #[test]
    fn content_types_are_reduced_to_their_essence() {
        for (raw, want) in [
            ("image/png", "image/png"),
            ("Image/PNG", "image/png"),
            ("  image/png  ", "image/png"),
            ("image/png; charset=utf-8", "image/png"),
            ("text/html;charset=utf-8", "text/html"),
            ("image/png;,text/html", "application/octet-stream"),
            ("image/png,text/html", "application/octet-stream"),
            ("text/html, image/png", "application/octet-stream"),
            ("image/png;x=\"a,b\"", "application/octet-stream"),
            ("image/png text/html", "application/octet-stream"),
            ("nonsense", "application/octet-stream"),
            ("", "application/octet-stream"),
            ("image/svg+xml", "image/svg+xml"),
        ] {
            assert_eq!(normalize_content_type(raw), want, "{raw:?}");
        }
        for hostile in [
            "image/png;,text/html",
            "image/png, text/html",
            "IMAGE/PNG;;,text/html",
            "video/mp4;,text/html",
            "text/html;image/png",
            "image/png\ttext/html",
        ] {
            assert!(
                !inline_allowed(hostile) || normalize_content_type(hostile) == "image/png",
                "{hostile:?}"
            );
        }
        assert!(!inline_allowed("text/html;image/png"));
    }
}
