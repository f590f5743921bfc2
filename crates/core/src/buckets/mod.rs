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

/// One id grammar, `^[A-Za-z0-9][A-Za-z0-9_.-]{0,max-1}$` with or without `:`, and how its
/// error names it: bucket and instance ids differ only in these fields.
struct IdGrammar {
    /// What the error calls the id.
    what: &'static str,
    /// Longest id, in bytes (every allowed character is ASCII).
    max: usize,
    /// Whether `:` is allowed after the first character.
    colon: bool,
    /// The allowed characters besides letters and digits, as the error lists them.
    others: &'static str,
}

const BUCKET_ID: IdGrammar = IdGrammar {
    what: "bucket id",
    max: MAX_BUCKET_ID_LEN,
    colon: true,
    others: "'_', '.', ':' or '-'",
};

const INSTANCE_ID: IdGrammar = IdGrammar {
    what: "instance id",
    max: MAX_INSTANCE_ID_LEN,
    colon: false,
    others: "'_', '.' or '-'",
};

impl IdGrammar {
    fn matches(&self, s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && s.len() <= self.max
            && chars.all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '_' | '.' | '-')
                    || (self.colon && c == ':')
            })
    }

    fn check(&self, s: &str) -> Result<(), Error> {
        if self.matches(s) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "invalid {} {}: use letters, digits, {} (start with a letter or digit, at most {})",
                self.what,
                shown(s),
                self.others,
                self.max
            )))
        }
    }
}

/// Whether `s` is a valid bucket id.
pub fn is_valid_bucket_id(s: &str) -> bool {
    BUCKET_ID.matches(s)
}

/// Checks the bucket id grammar; `INVALID_ARGUMENT` otherwise.
pub fn validate_bucket_id(s: &str) -> Result<(), Error> {
    BUCKET_ID.check(s)
}

/// Whether `s` is a valid instance id (bucket grammar without `:`).
pub fn is_valid_instance_id(s: &str) -> bool {
    INSTANCE_ID.matches(s)
}

/// Checks the instance id grammar; `INVALID_ARGUMENT` otherwise.
pub fn validate_instance_id(s: &str) -> Result<(), Error> {
    INSTANCE_ID.check(s)
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

/// The one `INCOMPATIBLE_BUCKET` error, whichever side raises it (server, Worker, host, sync):
/// `detail` is `{existing, wanted}`, each a [`Contract`] `{backend, schemaId, schemaVersion}`
/// (docs/ERRORS.md), so a widget reads the same shape from every path.
pub fn incompatible(existing: &Contract, wanted: &Contract) -> Error {
    Error::new(
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
    .with_detail(serde_json::json!({ "existing": existing, "wanted": wanted }))
}

/// [`incompatible`] unless [`compatible`].
pub fn check_compatible(existing: &Contract, wanted: &Contract) -> Result<(), Error> {
    if compatible(existing, wanted) {
        return Ok(());
    }
    Err(incompatible(existing, wanted))
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
mod tests;
