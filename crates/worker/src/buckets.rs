//! Buckets on D1: the topology listing and deletion (the document or every asset goes, the
//! refund is exact, versions never repeat), with the native `store/buckets.rs` SQL: rows,
//! refund and tombstone in one guarded batch, then the R2 objects.

use crate::args;
use crate::db::{self, Db};
use crate::instances;
use crate::users::parse_backend;
use monodit_core::api::{BucketInfo, ConnectedInstance, Contract, DeletedBucket};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use monodit_service::{validate, Clock};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct ListRow {
    backend: String,
    bucket_id: String,
    schema_id: String,
    schema_version: u32,
    bytes: i64,
    version: i64,
    created_at: i64,
}

#[derive(Deserialize)]
struct BindingRow {
    backend: String,
    bucket_id: String,
    instance_id: String,
    binding_key: String,
    isolated: i64,
}

/// `GET /v1/buckets`: every bucket with contract, usage and connected widgets (one snapshot).
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<BucketInfo>, Error> {
    let results =
        db.0.batch(vec![
            db.stmt(
                "SELECT b.backend, b.bucket_id, b.instance_id, b.binding_key, b.isolated \
                 FROM instance_bindings b JOIN instances i \
                   ON i.user_id = b.user_id AND i.instance_id = b.instance_id \
                 WHERE b.user_id = ?1 AND i.kind = 'widget' \
                 ORDER BY b.instance_id, b.binding_key",
                args![user_id],
            )?,
            db.stmt(
                "SELECT backend, bucket_id, schema_id, schema_version, bytes, version, created_at \
                 FROM buckets WHERE user_id = ?1 ORDER BY backend, bucket_id",
                args![user_id],
            )?,
        ])
        .await
        .map_err(|e| db::internal("database read", e))?;
    let (Some(bindings), Some(buckets)) = (results.first(), results.get(1)) else {
        return Err(db::internal("database read", "a batch lost a result"));
    };
    let mut connected: BTreeMap<(String, String), Vec<ConnectedInstance>> = BTreeMap::new();
    for b in bindings
        .results::<BindingRow>()
        .map_err(|e| db::internal("database row", e))?
    {
        connected
            .entry((b.backend, b.bucket_id))
            .or_default()
            .push(ConnectedInstance {
                instance_id: b.instance_id,
                binding_key: b.binding_key,
                isolated: b.isolated != 0,
            });
    }
    let mut out = Vec::new();
    for r in buckets
        .results::<ListRow>()
        .map_err(|e| db::internal("database row", e))?
    {
        let Some(backend) = parse_backend(&r.backend) else {
            continue;
        };
        let instances = connected
            .remove(&(r.backend, r.bucket_id.clone()))
            .unwrap_or_default();
        out.push(BucketInfo {
            contract: Contract {
                backend,
                schema_id: r.schema_id,
                schema_version: r.schema_version,
            },
            bucket_id: r.bucket_id,
            bytes: r.bytes.max(0) as u64,
            version: r.version.max(0) as u64,
            created_at: r.created_at,
            instances,
        });
    }
    Ok(out)
}

/// The backend spelling of a path (`d1-json` / `r2-assets`).
pub fn backend_from_path(s: &str) -> Result<Backend, Error> {
    parse_backend(s).ok_or_else(|| {
        Error::invalid(format!(
            "unknown backend {s:?}: expected \"d1-json\" or \"r2-assets\""
        ))
    })
}

#[derive(Deserialize)]
struct Facts {
    version: Option<i64>,
    bytes: Option<i64>,
    configured: i64,
}

#[derive(Deserialize)]
struct KeyRow {
    object_key: String,
}

/// `DELETE /v1/buckets/{backend}/{bucketId}`: the document or every asset row goes, the
/// quota is refunded exactly (the bucket's byte count, which every write keeps equal to its
/// content), the version is remembered so it never repeats; then the R2 objects are deleted
/// (recorded in `doomed_objects` first, removed from it once gone).
/// Instances whose config names the bucket have that key cleared and their bindings
/// re-resolved in the same batch (they fall back to their isolated default), as natively.
pub async fn delete(
    db: &Db,
    objects: &worker::Bucket,
    clock: &impl Clock,
    user_id: &str,
    backend: Backend,
    bucket_id: &str,
) -> Result<DeletedBucket, Error> {
    validate::bucket_id(bucket_id)?;
    let b = backend.as_str();
    for _ in 0..db::MAX_ATTEMPTS {
        let facts: Facts = db
            .first(
                "SELECT (SELECT version FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3) AS version, \
                   (SELECT bytes FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3) AS bytes, \
                   (SELECT COUNT(*) FROM instance_bindings WHERE user_id = ?1 AND backend = ?2 \
                      AND bucket_id = ?3 AND config_key IS NOT NULL) AS configured",
                args![user_id, b, bucket_id],
            )
            .await?
            .ok_or_else(|| db::internal("database read", "no row"))?;
        let (Some(version), Some(bytes)) = (facts.version, facts.bytes) else {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("no {b} bucket {bucket_id:?}"),
            ));
        };
        let now = clock.now_ms() as i64;
        let mut batch = vec![db::guard(
            db,
            "(SELECT version FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3) = ?4 \
             AND (SELECT bytes FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3) = ?5",
            args![user_id, b, bucket_id, version, bytes],
        )?];
        let mut disconnected = Vec::new();
        if facts.configured > 0 {
            let state = instances::facts(db, user_id).await?;
            let (statements, changed) =
                instances::disconnect_bucket(db, user_id, &state, backend, bucket_id, now).await?;
            batch.push(instances::Guard::new(user_id, &state).stmt(db)?);
            batch.push(instances::bump(db, user_id)?);
            batch.extend(statements);
            disconnected = changed;
        }
        match backend {
            Backend::D1Json => batch.push(db.stmt(
                "DELETE FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
                args![user_id, bucket_id],
            )?),
            Backend::R2Assets => {
                batch.push(db.stmt(
                    "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) \
                     SELECT object_key, ?3 FROM assets WHERE user_id = ?1 AND bucket_id = ?2",
                    args![user_id, bucket_id, now],
                )?);
                batch.push(db.stmt(
                    "DELETE FROM assets WHERE user_id = ?1 AND bucket_id = ?2",
                    args![user_id, bucket_id],
                )?);
            }
        }
        batch.push(db.stmt(
            "UPDATE users SET used_bytes = used_bytes - ?2 WHERE id = ?1",
            args![user_id, bytes.max(0)],
        )?);
        batch.push(db.stmt(
            "INSERT INTO bucket_tombstones (user_id, backend, bucket_id, last_version) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id, backend, bucket_id) DO UPDATE SET last_version = excluded.last_version",
            args![user_id, b, bucket_id, version],
        )?);
        batch.push(db.stmt(
            "DELETE FROM buckets WHERE user_id = ?1 AND backend = ?2 AND bucket_id = ?3",
            args![user_id, b, bucket_id],
        )?);
        // Which objects this deletion doomed: read before the batch, since the rows go.
        let keys: Vec<KeyRow> = if backend == Backend::R2Assets {
            db.all(
                "SELECT object_key FROM assets WHERE user_id = ?1 AND bucket_id = ?2",
                args![user_id, bucket_id],
            )
            .await?
        } else {
            Vec::new()
        };
        if !db.guarded_batch(batch).await? {
            continue;
        }
        let mut deleted = 0u64;
        for k in keys {
            match objects.delete(&k.object_key).await {
                Ok(()) => {
                    deleted += 1;
                    db.run(
                        "DELETE FROM doomed_objects WHERE object_key = ?1",
                        args![k.object_key.as_str()],
                    )
                    .await?;
                }
                Err(e) => worker::console_error!("R2 delete of {}: {e}", k.object_key),
            }
        }
        return Ok(DeletedBucket {
            refunded_bytes: bytes.max(0) as u64,
            deleted_objects: deleted,
            disconnected_instances: disconnected,
        });
    }
    Err(db::contended())
}
