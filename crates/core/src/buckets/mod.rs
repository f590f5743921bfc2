//! Bucket identity, resolution and compatibility.
//!
//! A bucket is identified by (user, backend, bucket id); d1-json and r2-assets ids live in
//! separate namespaces, so the first binding of each backend may both default to `instanceId`.
//!
//! # Resolution order
//! For a binding `b` of a manifest, with the widget's instance id and config:
//! 1. an explicit name (`ctx.store.get("explicit-name")`, or a theme's explicit bucket id);
//!    it must be a valid bucket id (`""` is an error, not a fallback: the caller asked for a
//!    specific bucket);
//! 2. `config[config_key(b)]` when it is a non-empty string ([`config_key`]: the binding's own
//!    `configKey`; else `storageNamespace` for the first d1-json binding; else the synthesised
//!    `bucket:<key>`, a field no widget author writes but the topology UI can);
//! 3. for the first d1-json binding, `config.storageNamespace` when non-empty, even if the
//!    binding also declares a `configKey` (the `configKey` wins when both are set);
//! 4. the default bucket ([`default_bucket`]): `instanceId` for the first binding of its
//!    backend, `instanceId:key` for every later binding of the same backend, so two bindings
//!    of one manifest never collide. Instance ids cannot contain `:`
//!    ([`validate_instance_id`]), so no other instance's default can equal `instanceId:key`.
//!
//! `null` or `""` in config means "not set" (the next step applies). Any other non-string
//! value, or a string outside the bucket grammar, is an `INVALID_ARGUMENT` error rather than
//! a silent fallback: falling back would quietly show the user an empty bucket.
//!
//! # Grammar
//! Bucket ids match `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$` (they travel in URL paths);
//! instance ids match `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`.

use crate::api::Contract;
use crate::errors::{Error, ErrorCode};
use crate::manifest::{shown, Binding, Manifest, STORAGE_NAMESPACE_KEY};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Backend {
    /// One JSON document per bucket (`ctx.store`).
    #[serde(rename = "d1-json")]
    D1Json,
    /// A set of files per bucket (`ctx.assets`).
    #[serde(rename = "r2-assets")]
    R2Assets,
}

impl Backend {
    /// The manifest / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::D1Json => "d1-json",
            Backend::R2Assets => "r2-assets",
        }
    }

    /// Parses the manifest / wire spelling.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "d1-json" => Some(Backend::D1Json),
            "r2-assets" => Some(Backend::R2Assets),
            _ => None,
        }
    }
}

/// Maximum length of a bucket id.
pub const MAX_BUCKET_ID_LEN: usize = 200;
/// Maximum length of an instance id.
pub const MAX_INSTANCE_ID_LEN: usize = 128;

fn grammar(s: &str, max: usize, colon: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= max
        && chars.all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') || (colon && c == ':')
        })
}

/// Whether `s` is a valid bucket id.
pub fn is_valid_bucket_id(s: &str) -> bool {
    grammar(s, MAX_BUCKET_ID_LEN, true)
}

/// Checks the bucket id grammar; `INVALID_ARGUMENT` otherwise.
pub fn validate_bucket_id(s: &str) -> Result<(), Error> {
    if is_valid_bucket_id(s) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid bucket id {}: use letters, digits, '_', '.', ':' or '-' (start with a letter or digit, at most {MAX_BUCKET_ID_LEN})",
            shown(s)
        )))
    }
}

/// Whether `s` is a valid instance id (bucket grammar without `:`).
pub fn is_valid_instance_id(s: &str) -> bool {
    grammar(s, MAX_INSTANCE_ID_LEN, false)
}

/// Checks the instance id grammar; `INVALID_ARGUMENT` otherwise.
pub fn validate_instance_id(s: &str) -> Result<(), Error> {
    if is_valid_instance_id(s) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid instance id {}: use letters, digits, '_', '.' or '-' (start with a letter or digit, at most {MAX_INSTANCE_ID_LEN})",
            shown(s)
        )))
    }
}

fn position(manifest: &Manifest, binding: &Binding) -> Result<usize, Error> {
    manifest.backend_position(binding).ok_or_else(|| {
        Error::new(
            ErrorCode::NoBinding,
            format!(
                "binding {} is not part of this manifest",
                shown(&binding.key)
            ),
        )
    })
}

/// The config field holding the bucket a binding is connected to (what the topology UI
/// writes when it moves a widget): the binding's `configKey`; else `storageNamespace` for the
/// first d1-json binding; else `bucket:<key>`.
pub fn config_key(manifest: &Manifest, binding: &Binding) -> Result<String, Error> {
    let pos = position(manifest, binding)?;
    Ok(match &binding.config_key {
        Some(k) => k.clone(),
        None if binding.backend == Backend::D1Json && pos == 0 => STORAGE_NAMESPACE_KEY.to_string(),
        None => format!("bucket:{}", binding.key),
    })
}

/// The isolated default bucket of a binding: `instanceId` for the first binding of its
/// backend, `instanceId:key` for later ones.
pub fn default_bucket(
    manifest: &Manifest,
    binding: &Binding,
    instance_id: &str,
) -> Result<String, Error> {
    validate_instance_id(instance_id)?;
    Ok(if position(manifest, binding)? == 0 {
        instance_id.to_string()
    } else {
        format!("{instance_id}:{}", binding.key)
    })
}

/// Whether `bucket_id` is the binding's own default bucket (the topology's "Isolated").
pub fn is_default_bucket(
    manifest: &Manifest,
    binding: &Binding,
    instance_id: &str,
    bucket_id: &str,
) -> bool {
    default_bucket(manifest, binding, instance_id).is_ok_and(|d| d == bucket_id)
}

fn config_bucket(config: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => validate_bucket_id(s)
            .map(|()| Some(s.clone()))
            .map_err(|e| Error::invalid(format!("config.{key}: {}", e.message))),
        Some(_) => Err(Error::invalid(format!(
            "config.{key} must be a bucket id string"
        ))),
    }
}

/// Where a resolved bucket id came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketSource {
    /// The caller named it.
    Explicit,
    /// This config field held it (the one the topology UI rewrites or clears to move the
    /// widget): the binding's [`config_key`], or `storageNamespace`.
    Config(String),
    /// The binding's isolated default ([`default_bucket`]).
    Default,
}

/// A resolved bucket and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The bucket id.
    pub bucket_id: String,
    /// Its source.
    pub source: BucketSource,
}

/// Like [`resolve_bucket`], also saying which rule produced the id.
pub fn resolve_with_source(
    manifest: &Manifest,
    binding: &Binding,
    explicit: Option<&str>,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<Resolution, Error> {
    let pos = position(manifest, binding)?;
    if let Some(name) = explicit {
        validate_bucket_id(name)?;
        return Ok(Resolution {
            bucket_id: name.to_string(),
            source: BucketSource::Explicit,
        });
    }
    let key = config_key(manifest, binding)?;
    if let Some(b) = config_bucket(config, &key)? {
        return Ok(Resolution {
            bucket_id: b,
            source: BucketSource::Config(key),
        });
    }
    if binding.backend == Backend::D1Json && pos == 0 {
        if let Some(b) = config_bucket(config, STORAGE_NAMESPACE_KEY)? {
            return Ok(Resolution {
                bucket_id: b,
                source: BucketSource::Config(STORAGE_NAMESPACE_KEY.to_string()),
            });
        }
    }
    Ok(Resolution {
        bucket_id: default_bucket(manifest, binding, instance_id)?,
        source: BucketSource::Default,
    })
}

/// Resolves the bucket of any binding (see the module docs for the order).
pub fn resolve_bucket(
    manifest: &Manifest,
    binding: &Binding,
    explicit: Option<&str>,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<String, Error> {
    resolve_with_source(manifest, binding, explicit, config, instance_id).map(|r| r.bucket_id)
}

fn expect_backend(binding: &Binding, backend: Backend) -> Result<(), Error> {
    if binding.backend == backend {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::NoBinding,
            format!(
                "binding {} is {}, not {}",
                shown(&binding.key),
                binding.backend.as_str(),
                backend.as_str()
            ),
        ))
    }
}

/// Document bucket, in the resolution order above: explicit → `config.storageNamespace` (first
/// d1-json binding) or the binding's config key → default. `NO_BINDING` if `binding` is not
/// d1-json.
pub fn resolve_document_bucket(
    manifest: &Manifest,
    binding: &Binding,
    explicit: Option<&str>,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<String, Error> {
    expect_backend(binding, Backend::D1Json)?;
    resolve_bucket(manifest, binding, explicit, config, instance_id)
}

/// Asset bucket, in the resolution order above: explicit (themes) → `config[configKey]` →
/// default. `NO_BINDING` if `binding` is not r2-assets.
pub fn resolve_asset_bucket(
    manifest: &Manifest,
    binding: &Binding,
    explicit: Option<&str>,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<String, Error> {
    expect_backend(binding, Backend::R2Assets)?;
    resolve_bucket(manifest, binding, explicit, config, instance_id)
}

/// Two contracts are compatible only when backend, schemaId and schemaVersion all match (else
/// `INCOMPATIBLE_BUCKET`, docs/ERRORS.md).
pub fn compatible(a: &Contract, b: &Contract) -> bool {
    a.backend == b.backend && a.schema_id == b.schema_id && a.schema_version == b.schema_version
}

/// `INCOMPATIBLE_BUCKET` (detail `{existing, wanted}`) unless [`compatible`].
pub fn check_compatible(existing: &Contract, wanted: &Contract) -> Result<(), Error> {
    if compatible(existing, wanted) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::IncompatibleBucket,
        format!(
            "bucket holds {} {} v{}, the widget expects {} {} v{}",
            existing.backend.as_str(),
            existing.schema_id,
            existing.schema_version,
            wanted.backend.as_str(),
            wanted.schema_id,
            wanted.schema_version
        ),
    )
    .with_detail(serde_json::json!({ "existing": existing, "wanted": wanted })))
}

/// Key of the implicit bindings [`with_theme_bindings`] adds.
pub const THEME_BINDING_KEY: &str = "theme";

/// Schema id of a theme's implicit bindings: `theme.<manifest id>` (`theme` without an id;
/// ids are at most 64 characters, so this stays within the schemaId grammar).
pub fn theme_schema_id(manifest: &Manifest) -> String {
    match &manifest.id {
        Some(id) => format!("theme.{id}"),
        None => "theme".to_string(),
    }
}

/// The manifest a Dynamic Theme is served with: its own, plus an implicit binding for each
/// backend it declares none of (README, For widget authors: themes may use `ctx.store` and
/// `ctx.assets` with explicit names without declaring bindings, and never appear in the
/// topology).
///
/// The implicit binding is keyed [`THEME_BINDING_KEY`] (or `theme-<backend>` if that key is
/// taken) with contract ([`theme_schema_id`], version 1), and resolves like any first binding
/// (explicit name, then config, then the instance id). Because it still carries a contract, a
/// theme can create and share its own buckets but cannot write into a widget's bucket unless
/// it declares that widget's contract, which keeps "explicit and stable" enforceable.
pub fn with_theme_bindings(manifest: &Manifest) -> Manifest {
    let mut out = manifest.clone();
    for backend in [Backend::D1Json, Backend::R2Assets] {
        if out.binding_for(backend).is_some() {
            continue;
        }
        let key = if out.binding(THEME_BINDING_KEY).is_some() {
            format!("{THEME_BINDING_KEY}-{}", backend.as_str())
        } else {
            THEME_BINDING_KEY.to_string()
        };
        out.bindings.push(Binding {
            key,
            backend,
            schema_id: theme_schema_id(manifest),
            schema_version: 1,
            config_key: None,
            label: None,
            shareable: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(bindings: Value) -> Manifest {
        Manifest::parse(
            &json!({"id": "w", "widgetType": "dynamic", "storage": {"bindings": bindings}}),
        )
        .unwrap()
    }

    fn d1(key: &str) -> Value {
        json!({"key": key, "backend": "d1-json", "schemaId": "notes.plaintext", "schemaVersion": 1})
    }

    fn r2(key: &str, config_key: Option<&str>) -> Value {
        let mut b = json!({"key": key, "backend": "r2-assets", "schemaId": "gallery.assets", "schemaVersion": 1});
        if let Some(k) = config_key {
            b["configKey"] = json!(k);
        }
        b
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn themes_get_an_implicit_binding_per_undeclared_backend() {
        let bare = Manifest::parse(&json!({"id": "aurora"})).unwrap();
        let t = with_theme_bindings(&bare);
        let sb = t.select_binding(Backend::D1Json, None).unwrap();
        let ab = t.select_binding(Backend::R2Assets, None).unwrap();
        assert_eq!(
            (sb.key.as_str(), ab.key.as_str()),
            ("theme", "theme-r2-assets")
        );
        for b in [sb, ab] {
            assert_eq!(
                (b.schema_id.as_str(), b.schema_version),
                ("theme.aurora", 1)
            );
        }
        let empty = config(json!({}));
        // Explicit names (how a theme keeps its state), else the instance's own bucket.
        assert_eq!(
            resolve_document_bucket(&t, sb, Some("palette"), &empty, "theme-1").unwrap(),
            "palette"
        );
        assert_eq!(
            resolve_asset_bucket(&t, ab, None, &empty, "theme-1").unwrap(),
            "theme-1"
        );
        // A widget's contract is not the theme's: its buckets stay out of reach.
        let widget = Contract {
            backend: Backend::D1Json,
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
        };
        assert_eq!(
            check_compatible(&widget, &sb.contract()).unwrap_err().code,
            ErrorCode::IncompatibleBucket
        );
        // Declared bindings are kept as they are; only the missing backend is added.
        let m = manifest(json!([d1("primary")]));
        let t = with_theme_bindings(&m);
        assert_eq!(t.bindings.len(), 2);
        assert_eq!(t.bindings[0], m.bindings[0]);
        assert_eq!(t.binding_for(Backend::R2Assets).unwrap().key, "theme");
        assert_eq!(
            t.binding_for(Backend::R2Assets).unwrap().schema_id,
            "theme.w"
        );
    }

    #[test]
    fn seed_document_resolution_order() {
        let m = manifest(json!([d1("primary")]));
        let b = &m.bindings[0];
        let empty = config(json!({}));
        // explicit → config.storageNamespace → instanceId
        let ns = config(json!({"storageNamespace": "team-notes"}));
        assert_eq!(
            resolve_document_bucket(&m, b, Some("explicit-name"), &ns, "inst1").unwrap(),
            "explicit-name"
        );
        assert_eq!(
            resolve_document_bucket(&m, b, None, &ns, "inst1").unwrap(),
            "team-notes"
        );
        assert_eq!(
            resolve_document_bucket(&m, b, None, &empty, "inst1").unwrap(),
            "inst1"
        );
        // "if that is empty, it falls back to ctx.instanceId"
        for blank in [json!(""), json!(null)] {
            let c = config(json!({ "storageNamespace": blank }));
            assert_eq!(
                resolve_document_bucket(&m, b, None, &c, "inst1").unwrap(),
                "inst1"
            );
        }
        assert!(is_default_bucket(&m, b, "inst1", "inst1"));
        assert!(!is_default_bucket(&m, b, "inst1", "team-notes"));
        assert_eq!(config_key(&m, b).unwrap(), "storageNamespace");
    }

    #[test]
    fn seed_asset_resolution_order() {
        let m = manifest(json!([r2("assets", Some("assetBucketId"))]));
        let b = &m.bindings[0];
        let c = config(json!({"assetBucketId": "shared-gallery", "storageNamespace": "ignored"}));
        assert_eq!(
            resolve_asset_bucket(&m, b, None, &c, "inst1").unwrap(),
            "shared-gallery"
        );
        assert_eq!(
            resolve_asset_bucket(&m, b, None, &config(json!({"assetBucketId": ""})), "inst1")
                .unwrap(),
            "inst1"
        );
        assert_eq!(
            resolve_asset_bucket(&m, b, None, &config(json!({})), "inst1").unwrap(),
            "inst1"
        );
        assert_eq!(
            resolve_asset_bucket(&m, b, Some("theme-bucket"), &c, "inst1").unwrap(),
            "theme-bucket"
        );
        assert_eq!(config_key(&m, b).unwrap(), "assetBucketId");
        // Using the wrong resolver is an error, not a silent mix-up.
        assert_eq!(
            resolve_document_bucket(&m, b, None, &c, "inst1")
                .unwrap_err()
                .code,
            ErrorCode::NoBinding
        );
    }

    #[test]
    fn first_of_each_backend_defaults_to_instance_id_without_collision() {
        // The Mixed example widget: one d1-json and one r2-assets binding both default to
        // instanceId; backends are separate namespaces, so they do not collide.
        let m = manifest(json!([d1("content"), r2("assets", Some("assetBucketId"))]));
        let empty = config(json!({}));
        assert_eq!(
            resolve_bucket(&m, &m.bindings[0], None, &empty, "i").unwrap(),
            "i"
        );
        assert_eq!(
            resolve_bucket(&m, &m.bindings[1], None, &empty, "i").unwrap(),
            "i"
        );
    }

    #[test]
    fn two_bindings_of_one_backend_never_collide() {
        let mut second = d1("drafts");
        second["configKey"] = json!("draftsBucket");
        let m = manifest(json!([
            d1("main"),
            second,
            d1("archive"),
            r2("a", None),
            r2("b", None)
        ]));
        let empty = config(json!({}));
        let resolve = |i: usize, c: &Map<String, Value>| {
            resolve_bucket(&m, &m.bindings[i], None, c, "inst").unwrap()
        };
        let defaults: Vec<String> = (0..5).map(|i| resolve(i, &empty)).collect();
        assert_eq!(
            defaults,
            ["inst", "inst:drafts", "inst:archive", "inst", "inst:b"]
        );
        for (i, d) in defaults.iter().enumerate() {
            assert!(is_default_bucket(&m, &m.bindings[i], "inst", d));
        }
        // storageNamespace only moves the first d1-json binding.
        let ns = config(json!({"storageNamespace": "team"}));
        assert_eq!(
            (0..5).map(|i| resolve(i, &ns)).collect::<Vec<_>>(),
            ["team", "inst:drafts", "inst:archive", "inst", "inst:b"]
        );
        // Later bindings move through their own config key (declared or synthesised).
        let c = config(
            json!({"draftsBucket": "d", "bucket:archive": "old", "bucket:b": "pics", "bucket:a": "x"}),
        );
        assert_eq!(
            (0..5).map(|i| resolve(i, &c)).collect::<Vec<_>>(),
            ["inst", "d", "old", "x", "pics"]
        );
        assert_eq!(config_key(&m, &m.bindings[1]).unwrap(), "draftsBucket");
        assert_eq!(config_key(&m, &m.bindings[2]).unwrap(), "bucket:archive");
        assert_eq!(config_key(&m, &m.bindings[3]).unwrap(), "bucket:a");
    }

    #[test]
    fn first_d1_binding_with_config_key_also_honours_storage_namespace() {
        let mut b = d1("main");
        b["configKey"] = json!("noteBucket");
        let m = manifest(json!([b]));
        let b = &m.bindings[0];
        let both = config(json!({"noteBucket": "mine", "storageNamespace": "team"}));
        assert_eq!(resolve_bucket(&m, b, None, &both, "i").unwrap(), "mine");
        let ns = config(json!({"storageNamespace": "team"}));
        assert_eq!(resolve_bucket(&m, b, None, &ns, "i").unwrap(), "team");
    }

    #[test]
    fn no_instance_can_take_another_instances_default() {
        // "x:assets" would equal instance "x"'s second binding default: instance ids have no ':'.
        assert!(validate_instance_id("x:assets").is_err());
        let m = manifest(json!([r2("first", None), r2("assets", None)]));
        assert_eq!(default_bucket(&m, &m.bindings[1], "x").unwrap(), "x:assets");
        assert_eq!(
            default_bucket(&m, &m.bindings[0], "x:assets")
                .unwrap_err()
                .code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn bad_names_and_config_values_are_errors() {
        let m = manifest(json!([d1("main")]));
        let b = &m.bindings[0];
        let empty = config(json!({}));
        for bad in [
            "",
            "a/b",
            "../x",
            ".x",
            "a b",
            "a'b",
            "é",
            "a\u{0}",
            &"a".repeat(201),
        ] {
            let e = resolve_bucket(&m, b, Some(bad), &empty, "i").unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
            let c = config(json!({ "storageNamespace": bad }));
            if !bad.is_empty() {
                assert_eq!(
                    resolve_bucket(&m, b, None, &c, "i").unwrap_err().code,
                    ErrorCode::InvalidArgument
                );
            }
            assert!(resolve_bucket(&m, b, None, &empty, bad).is_err());
        }
        for bad in [json!(5), json!(true), json!({}), json!(["a"])] {
            let c = config(json!({ "storageNamespace": bad }));
            assert_eq!(
                resolve_bucket(&m, b, None, &c, "i").unwrap_err().code,
                ErrorCode::InvalidArgument
            );
        }
        assert!(validate_bucket_id(&"a".repeat(200)).is_ok());
        assert!(validate_bucket_id("inst_1.v2:assets-x").is_ok());
    }

    #[test]
    fn resolution_reports_its_source() {
        let mut main = d1("main");
        main["configKey"] = json!("noteBucket");
        let m = manifest(json!([main, d1("drafts")]));
        let (a, b) = (&m.bindings[0], &m.bindings[1]);
        let src = |bd: &Binding, e: Option<&str>, c: Value| {
            resolve_with_source(&m, bd, e, &config(c), "i").unwrap()
        };
        assert_eq!(
            src(a, Some("x"), json!({"noteBucket": "n"})).source,
            BucketSource::Explicit
        );
        assert_eq!(
            src(a, None, json!({"noteBucket": "n", "storageNamespace": "s"})),
            Resolution {
                bucket_id: "n".into(),
                source: BucketSource::Config("noteBucket".into())
            }
        );
        assert_eq!(
            src(a, None, json!({"storageNamespace": "s"})).source,
            BucketSource::Config("storageNamespace".into())
        );
        assert_eq!(src(a, None, json!({})).source, BucketSource::Default);
        assert_eq!(
            src(b, None, json!({"storageNamespace": "s"})),
            Resolution {
                bucket_id: "i:drafts".into(),
                source: BucketSource::Default
            }
        );
        assert_eq!(
            src(b, None, json!({"bucket:drafts": "d"})).source,
            BucketSource::Config("bucket:drafts".into())
        );
    }

    #[test]
    fn binding_from_another_manifest_is_no_binding() {
        let m = manifest(json!([d1("main")]));
        let other = manifest(json!([d1("elsewhere")]));
        let e = resolve_bucket(&m, &other.bindings[0], None, &config(json!({})), "i").unwrap_err();
        assert_eq!(e.code, ErrorCode::NoBinding);
        assert!(!is_default_bucket(&m, &other.bindings[0], "i", "i"));
    }

    #[test]
    fn compatibility_needs_backend_schema_id_and_version() {
        let base = Contract {
            backend: Backend::D1Json,
            schema_id: "notes.plaintext".into(),
            schema_version: 1,
        };
        assert!(compatible(&base, &base.clone()));
        assert!(check_compatible(&base, &base).is_ok());
        let variants = [
            Contract {
                backend: Backend::R2Assets,
                ..base.clone()
            },
            Contract {
                schema_id: "notes.rich".into(),
                ..base.clone()
            },
            Contract {
                schema_version: 2,
                ..base.clone()
            },
        ];
        for v in variants {
            assert!(!compatible(&base, &v));
            let e = check_compatible(&base, &v).unwrap_err();
            assert_eq!(e.code, ErrorCode::IncompatibleBucket);
            let d = e.detail.unwrap();
            assert_eq!(d["existing"]["schemaId"], "notes.plaintext");
            assert_eq!(d["wanted"], serde_json::to_value(&v).unwrap());
        }
    }

    #[test]
    fn backend_spellings() {
        for b in [Backend::D1Json, Backend::R2Assets] {
            assert_eq!(Backend::parse(b.as_str()), Some(b));
            assert_eq!(serde_json::to_value(b).unwrap(), json!(b.as_str()));
        }
        assert_eq!(Backend::parse("D1-JSON"), None);
    }
}
