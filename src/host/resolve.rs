//! Bucket resolution and contracts: which bucket a call reaches (core `buckets`: explicit →
//! config → instance id), explicit namespaces only for new or compatible buckets, and the
//! config checks `mount`, `setConfig` and `relink` run before anything is applied.

use super::mount::Mount;
use super::session::SubSpec;
use crate::sync::BucketRef;
use monodit_core::buckets::{self, Backend};
use monodit_core::manifest::{Binding, Manifest};
use monodit_core::Error;
use serde_json::{Map, Value};
use std::rc::Rc;

/// Config values that select buckets must be valid bucket ids (checked by resolving every
/// binding), so a bad config is refused at mount/setConfig time, not on the first call.
pub(super) fn check_config(
    manifest: &Manifest,
    config: &Map<String, Value>,
    instance_id: &str,
) -> Result<(), Error> {
    for b in &manifest.bindings {
        buckets::resolve_bucket(manifest, b, None, config, instance_id)?;
    }
    Ok(())
}

impl Mount {
    /// Refuses (INCOMPATIBLE_BUCKET) a config that moves a document binding onto a bucket this
    /// browser knows was created with another contract, as the backend's registration would:
    /// it answers that too, but offline it cannot. A binding's own isolated bucket is not
    /// checked (the backend does not check it either: a schema upgrade never blocks it).
    pub(super) async fn check_known_contracts(
        &self,
        config: &Map<String, Value>,
    ) -> Result<(), Error> {
        let engine = self.engine()?;
        let isolated = Map::new();
        for b in self.manifest.bindings_for(Backend::D1Json) {
            let bucket =
                buckets::resolve_bucket(&self.manifest, b, None, config, &self.instance_id)?;
            let own =
                buckets::resolve_bucket(&self.manifest, b, None, &isolated, &self.instance_id)?;
            if bucket == own {
                continue;
            }
            if let Some(have) = engine.known_contract(&bucket).await {
                buckets::check_compatible(&have, &b.contract())?;
            }
        }
        Ok(())
    }

    pub(super) fn binding(&self, backend: Backend, key: Option<&str>) -> Result<&Binding, Error> {
        self.manifest.select_binding(backend, key)
    }

    /// Bucket resolution through core `buckets`: explicit → config → instanceId (per binding).
    pub(super) fn resolve(
        &self,
        backend: Backend,
        key: Option<&str>,
        explicit: Option<&str>,
    ) -> Result<BucketRef, Error> {
        let binding = self.binding(backend, key)?;
        let config = self.config.borrow();
        // `binding` is of `backend` already (`select_binding`), so core's backend-checking
        // wrappers (`resolve_document_bucket`/`resolve_asset_bucket`) would check it again.
        let bucket_id = buckets::resolve_bucket(
            &self.manifest,
            binding,
            explicit,
            &config,
            &self.instance_id,
        )?;
        Ok(BucketRef {
            bucket_id,
            contract: binding.contract(),
        })
    }

    /// An explicit namespace may only name a new bucket or one with the binding's contract.
    /// The engine's read checks the bucket's recorded contract (INCOMPATIBLE_BUCKET), and a
    /// never-written bucket reads as version 0, so this also creates nothing.
    pub(super) async fn check_explicit(&self, b: &BucketRef) -> Result<(), Error> {
        self.engine()?.doc_get(b).await.map(|_| ())
    }

    /// The asset bucket of a call: bound (config key → instanceId), or an explicit one that
    /// must be new or hold the binding's contract. From then on the host's event log watches
    /// it (asset buckets are watched once a widget uses them, see [`Mount::rewatch`]).
    pub(super) async fn resolve_assets(
        self: &Rc<Self>,
        binding: &Option<String>,
        explicit: &Option<String>,
    ) -> Result<BucketRef, Error> {
        let b = self.resolve(Backend::R2Assets, binding.as_deref(), explicit.as_deref())?;
        if explicit.is_some() {
            self.check_explicit_assets(&b).await?;
        }
        self.watch(
            &b.bucket_id,
            Backend::R2Assets,
            binding.clone(),
            explicit.is_some(),
        );
        Ok(b)
    }

    /// Asset buckets record their contract on the server; an explicit bucket id is checked
    /// against the bucket list once per mount and bucket (compatible stays compatible).
    pub(super) async fn check_explicit_assets(&self, b: &BucketRef) -> Result<(), Error> {
        if self.checked_assets.borrow().contains(&b.bucket_id) {
            return Ok(());
        }
        let buckets = self.engine()?.api().buckets().await?;
        if let Some(found) = buckets
            .iter()
            .find(|x| x.bucket_id == b.bucket_id && x.contract.backend == Backend::R2Assets)
        {
            buckets::check_compatible(&found.contract, &b.contract)?;
        }
        self.checked_assets.borrow_mut().insert(b.bucket_id.clone());
        Ok(())
    }

    pub(super) fn resolve_spec(&self, spec: &SubSpec) -> Result<BucketRef, Error> {
        match spec {
            SubSpec::Store { namespace, binding } => {
                self.resolve(Backend::D1Json, binding.as_deref(), namespace.as_deref())
            }
            SubSpec::Assets { namespace, binding } => {
                self.resolve(Backend::R2Assets, binding.as_deref(), namespace.as_deref())
            }
        }
    }
}
