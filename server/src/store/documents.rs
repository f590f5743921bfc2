//! d1-json documents: one JSON value per bucket, versioned, with idempotent conditional writes.

use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::store::{buckets, quota, rules, users::UserRow, validate};
use monodit_core::api::{
    AssetBucketMeta, BatchMetaRequest, BatchMetaResponse, Document, DocumentMeta, PutDocument,
    MAX_BATCH_META,
};
use monodit_core::buckets::Backend;
use rusqlite::{params, OptionalExtension, Transaction};

/// Mutation ids are remembered this long; a retry after a week is a new write.
const MUTATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

fn meta_of(
    tx: &Transaction<'_>,
    user_id: &str,
    bucket_id: &str,
) -> AppResult<Option<DocumentMeta>> {
    Ok(tx
        .query_row(
            "SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
            params![user_id, bucket_id],
            |r| {
                Ok(DocumentMeta {
                    bucket_id: bucket_id.to_string(),
                    version: r.get::<_, i64>(0)?.max(0) as u64,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    updated_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

fn no_document(bucket_id: &str) -> AppError {
    AppError::not_found(format!("no document in bucket {bucket_id:?}"))
}

/// `GET /v1/documents/{bucketId}/meta`.
pub fn meta(tx: &Transaction<'_>, user_id: &str, bucket_id: &str) -> AppResult<DocumentMeta> {
    validate::bucket_id(bucket_id)?;
    meta_of(tx, user_id, bucket_id)?.ok_or_else(|| no_document(bucket_id))
}

/// `GET /v1/documents/{bucketId}`.
pub fn get(tx: &Transaction<'_>, user_id: &str, bucket_id: &str) -> AppResult<Document> {
    validate::bucket_id(bucket_id)?;
    let row = tx
        .query_row(
            "SELECT value, version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
            params![user_id, bucket_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .optional()?;
    let (value, version, size, updated_at) = row.ok_or_else(|| no_document(bucket_id))?;
    let bucket = buckets::get(tx, user_id, Backend::D1Json, bucket_id)?
        .ok_or_else(|| no_document(bucket_id))?;
    Ok(Document {
        meta: DocumentMeta {
            bucket_id: bucket_id.to_string(),
            version: version.max(0) as u64,
            size: size.max(0) as u64,
            updated_at,
        },
        value: serde_json::from_str(&value)?,
        contract: bucket.contract,
    })
}

/// `PUT /v1/documents/{bucketId}`: gathers the facts in this transaction, asks
/// [`rules::decide_document_put`] (every rule lives there), and applies the decision.
pub fn put(
    tx: &Transaction<'_>,
    user: &UserRow,
    bucket_id: &str,
    req: PutDocument,
    if_match: Option<u64>,
) -> AppResult<DocumentMeta> {
    validate::bucket_id(bucket_id)?;
    let replay = match &req.mutation_id {
        Some(m) => tx
            .query_row(
                "SELECT version, size, updated_at FROM document_mutations \
                 WHERE user_id = ?1 AND bucket_id = ?2 AND mutation_id = ?3",
                params![user.id, bucket_id, m],
                |r| {
                    Ok(DocumentMeta {
                        bucket_id: bucket_id.to_string(),
                        version: r.get::<_, i64>(0)?.max(0) as u64,
                        size: r.get::<_, i64>(1)?.max(0) as u64,
                        updated_at: r.get(2)?,
                    })
                },
            )
            .optional()?,
        None => None,
    };
    let bucket = buckets::get(tx, &user.id, Backend::D1Json, bucket_id)?;
    let version_floor = match &bucket {
        Some(b) => b.version,
        None => buckets::version_floor(tx, &user.id, Backend::D1Json, bucket_id)?,
    };
    let (used, reserved) = quota::usage(tx, &user.id)?;
    let facts = rules::DocumentFacts {
        replay,
        bucket: bucket.map(|b| b.contract),
        version_floor,
        current: meta_of(tx, &user.id, bucket_id)?.map(|m| (m.version, m.size)),
        used,
        reserved,
        limit: user.limit_bytes(),
    };
    let write = match rules::decide_document_put(bucket_id, &req, if_match, &facts)? {
        rules::DocumentDecision::Replay(meta) => return Ok(meta),
        rules::DocumentDecision::Write(w) => w,
    };
    buckets::ensure(tx, &user.id, bucket_id, &write.contract)?;
    let now = now_ms();
    tx.execute(
        "INSERT INTO documents (user_id, bucket_id, value, version, size, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (user_id, bucket_id) DO UPDATE SET value = excluded.value, \
           version = excluded.version, size = excluded.size, updated_at = excluded.updated_at",
        params![
            user.id,
            bucket_id,
            write.text,
            write.version as i64,
            write.size as i64,
            now
        ],
    )?;
    buckets::set_usage(
        tx,
        &user.id,
        Backend::D1Json,
        bucket_id,
        write.size,
        write.version,
    )?;
    quota::adjust_used(tx, &user.id, write.delta, false)?;
    if let Some(m) = &req.mutation_id {
        tx.execute(
            "INSERT INTO document_mutations (user_id, bucket_id, mutation_id, version, size, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user.id, bucket_id, m, write.version as i64, write.size as i64, now],
        )?;
        // Bounded table: forget very old mutation ids while we hold the write lock anyway.
        tx.execute(
            "DELETE FROM document_mutations WHERE updated_at < ?1",
            params![now - MUTATION_TTL_MS],
        )?;
    }
    Ok(DocumentMeta {
        bucket_id: bucket_id.to_string(),
        version: write.version,
        size: write.size,
        updated_at: now,
    })
}

/// `POST /v1/meta`: document metadata and asset-bucket change counters in one snapshot.
/// Unknown buckets map to `null`; invalid ids fail the whole request.
pub fn batch_meta(
    tx: &Transaction<'_>,
    user_id: &str,
    req: BatchMetaRequest,
) -> AppResult<BatchMetaResponse> {
    let n = req.documents.len() + req.assets.len();
    if n > MAX_BATCH_META {
        return Err(AppError::invalid(format!(
            "at most {MAX_BATCH_META} buckets per batch meta request (got {n})"
        )));
    }
    let mut out = BatchMetaResponse::default();
    let mut doc_stmt = tx.prepare_cached(
        "SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
    )?;
    for id in req.documents {
        validate::bucket_id(&id)?;
        if out.documents.contains_key(&id) {
            continue;
        }
        let meta = doc_stmt
            .query_row(params![user_id, id], |r| {
                Ok(DocumentMeta {
                    bucket_id: id.clone(),
                    version: r.get::<_, i64>(0)?.max(0) as u64,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    updated_at: r.get(2)?,
                })
            })
            .optional()?;
        out.documents.insert(id, meta);
    }
    let mut asset_stmt = tx.prepare_cached(
        "SELECT b.version, b.bytes, (SELECT COUNT(*) FROM assets a WHERE a.user_id = b.user_id AND a.bucket_id = b.bucket_id) \
         FROM buckets b WHERE b.user_id = ?1 AND b.backend = 'r2-assets' AND b.bucket_id = ?2",
    )?;
    for id in req.assets {
        validate::bucket_id(&id)?;
        if out.assets.contains_key(&id) {
            continue;
        }
        let meta = asset_stmt
            .query_row(params![user_id, id], |r| {
                Ok(AssetBucketMeta {
                    bucket_id: id.clone(),
                    version: r.get::<_, i64>(0)?.max(0) as u64,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .optional()?;
        out.assets.insert(id, meta);
    }
    Ok(out)
}
