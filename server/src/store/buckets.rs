//! Buckets: identity (user, backend, bucket id), the contract they were created with, the
//! topology listing and deletion with seed 000's semantics.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::quota;
use crate::store::users::parse_backend;
use monodit_core::api::{BucketInfo, ConnectedInstance, Contract, DeletedBucket};
use monodit_core::buckets::Backend;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// A bucket row.
#[derive(Debug, Clone)]
pub struct BucketRow {
    /// Contract it was created with.
    pub contract: Contract,
    /// Bytes counted against quota.
    pub bytes: u64,
    /// Document version or asset change counter.
    pub version: u64,
    /// Epoch ms.
    pub created_at: i64,
}

/// The bucket, if it exists.
pub fn get(
    tx: &Transaction<'_>,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
) -> AppResult<Option<BucketRow>> {
    Ok(tx
        .query_row(
            "SELECT schema_id, schema_version, bytes, version, created_at FROM buckets \
             WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
            params![user_id, backend.as_str(), bucket_id],
            |r| {
                Ok(BucketRow {
                    contract: Contract {
                        backend,
                        schema_id: r.get(0)?,
                        schema_version: r.get(1)?,
                    },
                    bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    version: r.get::<_, i64>(3)?.max(0) as u64,
                    created_at: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Fails with INCOMPATIBLE_BUCKET (core's rule and detail `{existing, wanted}`) when
/// `existing` was created with another contract.
pub fn check_contract(existing: &BucketRow, wanted: &Contract, _bucket_id: &str) -> AppResult<()> {
    monodit_core::buckets::check_compatible(&existing.contract, wanted).map_err(AppError::from)
}

/// The version a bucket that does not exist continues from: its last version before it was
/// deleted, or 0.
pub fn version_floor(
    tx: &Transaction<'_>,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
) -> AppResult<u64> {
    let floor: Option<i64> = tx
        .query_row(
            "SELECT last_version FROM bucket_tombstones \
             WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
            params![user_id, backend.as_str(), bucket_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(floor.unwrap_or(0).max(0) as u64)
}

/// The bucket with `contract`, created when missing (its version continues after any earlier
/// deletion, so a version number never names two different contents).
pub fn ensure(
    tx: &Transaction<'_>,
    user_id: &str,
    bucket_id: &str,
    contract: &Contract,
) -> AppResult<BucketRow> {
    if let Some(existing) = get(tx, user_id, contract.backend, bucket_id)? {
        check_contract(&existing, contract, bucket_id)?;
        return Ok(existing);
    }
    let floor = version_floor(tx, user_id, contract.backend, bucket_id)? as i64;
    let now = now_ms();
    tx.execute(
        "INSERT INTO buckets (user_id, backend, bucket_id, schema_id, schema_version, bytes, version, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
        params![
            user_id,
            contract.backend.as_str(),
            bucket_id,
            contract.schema_id,
            contract.schema_version,
            floor,
            now
        ],
    )?;
    Ok(BucketRow {
        contract: contract.clone(),
        bytes: 0,
        version: floor as u64,
        created_at: now,
    })
}

/// Sets a bucket's byte count and version.
pub fn set_usage(
    tx: &Transaction<'_>,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
    bytes: u64,
    version: u64,
) -> AppResult<()> {
    tx.execute(
        "UPDATE buckets SET bytes = ?4, version = ?5 \
         WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
        params![
            user_id,
            backend.as_str(),
            bucket_id,
            bytes as i64,
            version as i64
        ],
    )?;
    Ok(())
}

/// Connected widget instances per (backend, bucket id), themes excluded.
fn connected(
    tx: &Transaction<'_>,
    user_id: &str,
) -> AppResult<BTreeMap<(String, String), Vec<ConnectedInstance>>> {
    let mut stmt = tx.prepare(
        "SELECT b.backend, b.bucket_id, b.instance_id, b.binding_key, b.isolated \
         FROM instance_bindings b JOIN instances i \
           ON i.user_id = b.user_id AND i.instance_id = b.instance_id \
         WHERE b.user_id = ?1 AND i.kind = 'widget' \
         ORDER BY b.instance_id, b.binding_key",
    )?;
    let rows = stmt.query_map(params![user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            ConnectedInstance {
                instance_id: r.get(2)?,
                binding_key: r.get(3)?,
                isolated: r.get::<_, i64>(4)? != 0,
            },
        ))
    })?;
    let mut map: BTreeMap<(String, String), Vec<ConnectedInstance>> = BTreeMap::new();
    for row in rows {
        let (backend, bucket, inst) = row?;
        map.entry((backend, bucket)).or_default().push(inst);
    }
    Ok(map)
}

/// `GET /v1/buckets`: every bucket of the user with contract, usage and connected widgets.
pub fn list(tx: &Transaction<'_>, user_id: &str) -> AppResult<Vec<BucketInfo>> {
    let mut connected = connected(tx, user_id)?;
    let mut stmt = tx.prepare(
        "SELECT backend, bucket_id, schema_id, schema_version, bytes, version, created_at \
         FROM buckets WHERE user_id = ?1 ORDER BY backend, bucket_id",
    )?;
    let rows = stmt.query_map(params![user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u32>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (backend_s, bucket_id, schema_id, schema_version, bytes, version, created_at) = row?;
        let Some(backend) = parse_backend(&backend_s) else {
            continue;
        };
        let instances = connected
            .remove(&(backend_s, bucket_id.clone()))
            .unwrap_or_default();
        out.push(BucketInfo {
            contract: Contract {
                backend,
                schema_id,
                schema_version,
            },
            bucket_id,
            bytes: bytes.max(0) as u64,
            version: version.max(0) as u64,
            created_at,
            instances,
        });
    }
    Ok(out)
}

/// What a bucket deletion decided; the caller removes `object_keys` from the object store
/// after the transaction commits.
#[derive(Debug)]
pub struct Deletion {
    /// The answer (its `deleted_objects` is filled in by the caller).
    pub answer: DeletedBucket,
    /// Objects to remove from the object store.
    pub object_keys: Vec<String>,
}

/// Deletes a bucket (seed 000 "Deletion Semantics"): its document or every asset row goes,
/// the quota is refunded exactly, the version is remembered so it never repeats, and widget
/// instances whose config pointed at it have that config key cleared (they fall back to their
/// isolated default bucket).
pub fn delete(
    tx: &Transaction<'_>,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
) -> AppResult<Deletion> {
    let bucket = get(tx, user_id, backend, bucket_id)?.ok_or_else(|| {
        AppError::not_found(format!("no {} bucket {bucket_id:?}", backend.as_str()))
    })?;
    let mut object_keys = Vec::new();
    let refunded: u64 = match backend {
        Backend::D1Json => {
            let size: Option<i64> = tx
                .query_row(
                    "SELECT size FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
                    params![user_id, bucket_id],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
                params![user_id, bucket_id],
            )?;
            size.unwrap_or(0).max(0) as u64
        }
        Backend::R2Assets => {
            let mut stmt = tx.prepare(
                "SELECT object_key, size FROM assets WHERE user_id = ?1 AND bucket_id = ?2",
            )?;
            let mut total = 0u64;
            for row in stmt.query_map(params![user_id, bucket_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (key, size) = row?;
                total += size.max(0) as u64;
                // Its deletion is recorded with the refund; the sweep finishes it after a crash.
                crate::store::assets::doom(tx, &key)?;
                object_keys.push(key);
            }
            tx.execute(
                "DELETE FROM assets WHERE user_id = ?1 AND bucket_id = ?2",
                params![user_id, bucket_id],
            )?;
            total
        }
    };
    quota::adjust_used(tx, user_id, -(refunded as i64), false)?;
    tx.execute(
        "INSERT INTO bucket_tombstones (user_id, backend, bucket_id, last_version) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id, backend, bucket_id) DO UPDATE SET last_version = excluded.last_version",
        params![user_id, backend.as_str(), bucket_id, bucket.version as i64],
    )?;
    tx.execute(
        "DELETE FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
        params![user_id, backend.as_str(), bucket_id],
    )?;
    let disconnected = crate::store::instances::disconnect_bucket(tx, user_id, backend, bucket_id)?;
    Ok(Deletion {
        answer: DeletedBucket {
            refunded_bytes: refunded,
            deleted_objects: 0,
            disconnected_instances: disconnected,
        },
        object_keys,
    })
}
