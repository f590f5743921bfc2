//! Where a registered instance's bindings point: the bucket each one resolves to for the
//! instance's config (core `buckets`), the config field that chose it, and whether it is the
//! instance's isolated default. Both backends record these rows when an instance registers
//! (`server/src/store/instances.rs`, `crates/worker/src/instances/`).

use monodit_core::buckets::{self as rules, Backend};
use monodit_core::manifest::{Manifest, STORAGE_NAMESPACE_KEY};
use monodit_core::Error;
use serde_json::{Map, Value};

/// Where one binding of an instance points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The binding's key in the manifest.
    pub key: String,
    /// Its backend.
    pub backend: Backend,
    /// The bucket it resolves to.
    pub bucket_id: String,
    /// The config field that chose the bucket (None: the isolated default).
    pub source_key: Option<String>,
    /// Whether the bucket is the instance's own default.
    pub isolated: bool,
}

fn non_empty(config: &Map<String, Value>, key: &str) -> bool {
    matches!(config.get(key), Some(Value::String(s)) if !s.is_empty())
}

/// Every binding of `manifest`, resolved for `config` and `instance_id`, in manifest order.
pub fn resolve_all(
    manifest: &Manifest,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<Vec<Resolved>, Error> {
    let mut out = Vec::new();
    for b in &manifest.bindings {
        let bucket_id = rules::resolve_bucket(manifest, b, None, config, instance_id)?;
        let ck = rules::config_key(manifest, b)?;
        let first_doc = b.backend == Backend::D1Json && manifest.backend_position(b) == Some(0);
        // The first document binding also follows the dashboard-wide storageNamespace.
        let source_key = if non_empty(config, &ck) {
            Some(ck)
        } else if first_doc && non_empty(config, STORAGE_NAMESPACE_KEY) {
            Some(STORAGE_NAMESPACE_KEY.to_string())
        } else {
            None
        };
        let isolated = rules::is_default_bucket(manifest, b, instance_id, &bucket_id);
        out.push(Resolved {
            key: b.key.clone(),
            backend: b.backend,
            bucket_id,
            source_key,
            isolated,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        let d1 = |key: &str| json!({"key": key, "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1});
        let r2 = json!({"key": "photos", "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1, "configKey": "album"});
        let bindings = json!([d1("notes"), d1("drafts"), r2]);
        Manifest::parse(
            &json!({"id": "w", "widgetType": "dynamic", "storage": {"bindings": bindings}}),
        )
        .unwrap()
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn row(
        key: &str,
        backend: Backend,
        bucket: &str,
        source: Option<&str>,
        isolated: bool,
    ) -> Resolved {
        Resolved {
            key: key.into(),
            backend,
            bucket_id: bucket.into(),
            source_key: source.map(Into::into),
            isolated,
        }
    }

    #[test]
    fn an_empty_config_gives_every_binding_its_isolated_default() {
        let got = resolve_all(&manifest(), &Map::new(), "inst-1").unwrap();
        assert_eq!(
            got,
            [
                row("notes", Backend::D1Json, "inst-1", None, true),
                row("drafts", Backend::D1Json, "inst-1:drafts", None, true),
                row("photos", Backend::R2Assets, "inst-1", None, true),
            ]
        );
    }

    #[test]
    fn config_fields_choose_buckets_and_name_their_source() {
        let c = config(json!({"storageNamespace": "team", "bucket:drafts": "", "album": "trip"}));
        let got = resolve_all(&manifest(), &c, "inst-1").unwrap();
        assert_eq!(
            got,
            [
                row(
                    "notes",
                    Backend::D1Json,
                    "team",
                    Some("storageNamespace"),
                    false
                ),
                // An empty string chooses nothing: the isolated default stays.
                row("drafts", Backend::D1Json, "inst-1:drafts", None, true),
                row("photos", Backend::R2Assets, "trip", Some("album"), false),
            ]
        );
    }

    #[test]
    fn a_config_that_names_a_bad_bucket_is_an_error() {
        let c = config(json!({"album": "no spaces allowed"}));
        assert!(resolve_all(&manifest(), &c, "inst-1").is_err());
    }
}
