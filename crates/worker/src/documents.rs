//! d1-json documents on D1: the native `store/documents.rs` with the same SQL, its reads as
//! one batch (one snapshot) and its writes as one guarded batch. Every rule comes from
//! [`monodit_service::rules::decide_document_put`].

use crate::args;
use crate::db::{self, Db};
use crate::users::User;
use monodit_core::api::{
    AssetBucketMeta, BatchMetaRequest, BatchMetaResponse, Contract, Document, DocumentMeta,
    PutDocument, MAX_BATCH_META,
};
use monodit_core::buckets::Backend;
use monodit_core::{Error, ErrorCode};
use monodit_service::rules::{self, DocumentDecision, DocumentFacts};
use monodit_service::{validate, Clock};
use serde::Deserialize;
use worker::d1::D1Result;

/// Mutation ids are remembered this long; a retry after a week is a new write.
const MUTATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Deserialize)]
struct MetaRow {
    version: i64,
    size: i64,
    updated_at: i64,
}

#[derive(Deserialize)]
struct DocRow {
    value: String,
    version: i64,
    size: i64,
    updated_at: i64,
}

#[derive(Deserialize)]
struct BucketRow {
    schema_id: String,
    schema_version: u32,
    version: i64,
}

#[derive(Deserialize)]
struct VersionRow {
    last_version: i64,
}

#[derive(Deserialize)]
struct UsageRow {
    used_bytes: i64,
    reserved_bytes: i64,
}

fn nonneg(n: i64) -> u64 {
    n.max(0) as u64
}

fn meta(bucket_id: &str, r: &MetaRow) -> DocumentMeta {
    DocumentMeta {
        bucket_id: bucket_id.to_string(),
        version: nonneg(r.version),
        size: nonneg(r.size),
        updated_at: r.updated_at,
    }
}

fn no_document(bucket_id: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no document in bucket {bucket_id:?}"),
    )
}

/// The first row of one batch result, if any.
fn first_row<T: serde::de::DeserializeOwned>(r: Option<&D1Result>) -> Result<Option<T>, Error> {
    let Some(r) = r else {
        return Err(db::internal("database read", "a batch lost a result"));
    };
    Ok(r.results::<T>()
        .map_err(|e| db::internal("database row", e))?
        .into_iter()
        .next())
}

async fn read_batch(
    db: &Db,
    stmts: Vec<worker::d1::D1PreparedStatement>,
) -> Result<Vec<D1Result>, Error> {
    db.0.batch(stmts)
        .await
        .map_err(|e| db::internal("database read", e))
}

/// `GET /v1/documents/{bucketId}/meta`.
pub async fn get_meta(db: &Db, user_id: &str, bucket_id: &str) -> Result<DocumentMeta, Error> {
    validate::bucket_id(bucket_id)?;
    let row: Option<MetaRow> = db
        .first(
            "SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
            args![user_id, bucket_id],
        )
        .await?;
    row.map(|r| meta(bucket_id, &r))
        .ok_or_else(|| no_document(bucket_id))
}

/// `GET /v1/documents/{bucketId}`: the document and its bucket's contract, one snapshot.
pub async fn get(db: &Db, user_id: &str, bucket_id: &str) -> Result<Document, Error> {
    validate::bucket_id(bucket_id)?;
    let results = read_batch(
        db,
        vec![
            db.stmt(
                "SELECT value, version, size, updated_at FROM documents \
                 WHERE user_id = ?1 AND bucket_id = ?2",
                args![user_id, bucket_id],
            )?,
            db.stmt(
                "SELECT schema_id, schema_version, version FROM buckets \
                 WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2",
                args![user_id, bucket_id],
            )?,
        ],
    )
    .await?;
    let doc: Option<DocRow> = first_row(results.first())?;
    let bucket: Option<BucketRow> = first_row(results.get(1))?;
    let (Some(doc), Some(bucket)) = (doc, bucket) else {
        return Err(no_document(bucket_id));
    };
    let value = serde_json::from_str(&doc.value).map_err(|e| db::internal("stored json", e))?;
    Ok(Document {
        meta: meta(
            bucket_id,
            &MetaRow {
                version: doc.version,
                size: doc.size,
                updated_at: doc.updated_at,
            },
        ),
        value,
        contract: Contract {
            backend: Backend::D1Json,
            schema_id: bucket.schema_id,
            schema_version: bucket.schema_version,
        },
    })
}

/// Facts of one write plus what the guard compares against.
struct Gathered {
    facts: DocumentFacts,
    /// The bucket's version, or -1 when the bucket does not exist.
    bucket_version: i64,
    /// The tombstone's last version, or 0.
    floor: i64,
}

async fn gather(
    db: &Db,
    user: &User,
    bucket_id: &str,
    mutation_id: Option<&str>,
) -> Result<Gathered, Error> {
    let results = read_batch(
        db,
        vec![
            db.stmt(
                "SELECT version, size, updated_at FROM document_mutations \
                 WHERE user_id = ?1 AND bucket_id = ?2 AND mutation_id = ?3",
                args![&user.id, bucket_id, mutation_id],
            )?,
            db.stmt(
                "SELECT schema_id, schema_version, version FROM buckets \
                 WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2",
                args![&user.id, bucket_id],
            )?,
            db.stmt(
                "SELECT last_version FROM bucket_tombstones \
                 WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2",
                args![&user.id, bucket_id],
            )?,
            db.stmt(
                "SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2",
                args![&user.id, bucket_id],
            )?,
            db.stmt(
                "SELECT used_bytes, reserved_bytes FROM users WHERE id = ?1",
                args![&user.id],
            )?,
        ],
    )
    .await?;
    let replay: Option<MetaRow> = first_row(results.first())?;
    let bucket: Option<BucketRow> = first_row(results.get(1))?;
    let tomb: Option<VersionRow> = first_row(results.get(2))?;
    let current: Option<MetaRow> = first_row(results.get(3))?;
    let usage: UsageRow = first_row(results.get(4))?
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown user"))?;
    let floor = tomb.map(|t| t.last_version).unwrap_or(0).max(0);
    let bucket_version = bucket.as_ref().map(|b| b.version.max(0)).unwrap_or(-1);
    Ok(Gathered {
        facts: DocumentFacts {
            replay: replay.map(|r| meta(bucket_id, &r)),
            version_floor: if bucket_version >= 0 {
                bucket_version as u64
            } else {
                floor as u64
            },
            bucket: bucket.map(|b| Contract {
                backend: Backend::D1Json,
                schema_id: b.schema_id,
                schema_version: b.schema_version,
            }),
            current: current.map(|m| (nonneg(m.version), nonneg(m.size))),
            used: nonneg(usage.used_bytes),
            reserved: nonneg(usage.reserved_bytes),
            limit: user.limit_bytes(),
        },
        bucket_version,
        floor,
    })
}

/// `PUT /v1/documents/{bucketId}`: reads the facts, asks the rule, and sends the write as
/// one batch headed by a guard that the facts still hold (no other write of this document
/// or bucket in between, the mutation id still unseen, the growth still within quota). A
/// refused guard means another write won: decide again on the new facts.
pub async fn put(
    db: &Db,
    clock: &impl Clock,
    user: &User,
    bucket_id: &str,
    req: PutDocument,
    if_match: Option<u64>,
) -> Result<DocumentMeta, Error> {
    validate::bucket_id(bucket_id)?;
    for _ in 0..db::MAX_ATTEMPTS {
        let g = gather(db, user, bucket_id, req.mutation_id.as_deref()).await?;
        let write = match rules::decide_document_put(bucket_id, &req, if_match, &g.facts)? {
            DocumentDecision::Replay(meta) => return Ok(meta),
            DocumentDecision::Write(w) => w,
        };
        let now = clock.now_ms() as i64;
        let current_version = g.facts.current.map(|c| c.0).unwrap_or(0);
        let uid = &user.id;
        let mut batch = vec![db::guard(
            db,
            "NOT EXISTS (SELECT 1 FROM document_mutations \
               WHERE user_id = ?1 AND bucket_id = ?2 AND mutation_id = ?3) \
             AND COALESCE((SELECT version FROM documents WHERE user_id = ?1 AND bucket_id = ?2), 0) = ?4 \
             AND COALESCE((SELECT version FROM buckets \
               WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2), -1) = ?5 \
             AND COALESCE((SELECT last_version FROM bucket_tombstones \
               WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2), 0) = ?6 \
             AND (?7 <= 0 OR (SELECT used_bytes + reserved_bytes FROM users WHERE id = ?1) + ?7 <= ?8)",
            args![
                uid,
                bucket_id,
                req.mutation_id.as_deref(),
                current_version,
                g.bucket_version,
                g.floor,
                write.delta,
                g.facts.limit
            ],
        )?];
        if g.bucket_version < 0 {
            batch.push(db.stmt(
                "INSERT INTO buckets (user_id, backend, bucket_id, schema_id, schema_version, bytes, version, created_at) \
                 VALUES (?1, 'd1-json', ?2, ?3, ?4, 0, ?5, ?6)",
                args![
                    uid,
                    bucket_id,
                    write.contract.schema_id.as_str(),
                    write.contract.schema_version,
                    g.floor,
                    now
                ],
            )?);
        }
        batch.push(db.stmt(
            "INSERT INTO documents (user_id, bucket_id, value, version, size, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (user_id, bucket_id) DO UPDATE SET value = excluded.value, \
               version = excluded.version, size = excluded.size, updated_at = excluded.updated_at",
            args![
                uid,
                bucket_id,
                write.text.as_str(),
                write.version,
                write.size,
                now
            ],
        )?);
        batch.push(db.stmt(
            "UPDATE buckets SET bytes = ?3, version = ?4 \
             WHERE user_id = ?1 AND backend = 'd1-json' AND bucket_id = ?2",
            args![uid, bucket_id, write.size, write.version],
        )?);
        if write.delta != 0 {
            batch.push(db.stmt(
                "UPDATE users SET used_bytes = used_bytes + ?2 WHERE id = ?1",
                args![uid, write.delta],
            )?);
        }
        if let Some(m) = &req.mutation_id {
            batch.push(db.stmt(
                "INSERT INTO document_mutations (user_id, bucket_id, mutation_id, version, size, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![uid, bucket_id, m, write.version, write.size, now],
            )?);
            batch.push(db.stmt(
                "DELETE FROM document_mutations WHERE updated_at < ?1",
                args![now - MUTATION_TTL_MS],
            )?);
        }
        if db.guarded_batch(batch).await? {
            return Ok(DocumentMeta {
                bucket_id: bucket_id.to_string(),
                version: write.version,
                size: write.size,
                updated_at: now,
            });
        }
    }
    Err(db::contended())
}

#[derive(Deserialize)]
struct BatchDocRow {
    bucket_id: String,
    version: i64,
    size: i64,
    updated_at: i64,
}

#[derive(Deserialize)]
struct BatchAssetRow {
    bucket_id: String,
    version: i64,
    bytes: i64,
    count: i64,
}

/// `POST /v1/meta`: document metadata and asset-bucket change counters in one snapshot. The
/// ids travel as one JSON array parameter (`json_each`), so 1000 ids stay within D1's 100
/// bound parameters. Unknown buckets map to `null`; invalid ids fail the whole request.
pub async fn batch_meta(
    db: &Db,
    user_id: &str,
    req: BatchMetaRequest,
) -> Result<BatchMetaResponse, Error> {
    let n = req.documents.len() + req.assets.len();
    if n > MAX_BATCH_META {
        return Err(Error::invalid(format!(
            "at most {MAX_BATCH_META} buckets per batch meta request (got {n})"
        )));
    }
    for id in req.documents.iter().chain(&req.assets) {
        validate::bucket_id(id)?;
    }
    let mut out = BatchMetaResponse {
        documents: req.documents.iter().map(|id| (id.clone(), None)).collect(),
        assets: req.assets.iter().map(|id| (id.clone(), None)).collect(),
    };
    if n == 0 {
        return Ok(out);
    }
    let docs = serde_json::to_string(&req.documents).map_err(|e| db::internal("json", e))?;
    let assets = serde_json::to_string(&req.assets).map_err(|e| db::internal("json", e))?;
    let results = read_batch(
        db,
        vec![
            db.stmt(
                "SELECT bucket_id, version, size, updated_at FROM documents \
                 WHERE user_id = ?1 AND bucket_id IN (SELECT value FROM json_each(?2))",
                args![user_id, docs],
            )?,
            db.stmt(
                "SELECT b.bucket_id AS bucket_id, b.version AS version, b.bytes AS bytes, \
                   (SELECT COUNT(*) FROM assets a WHERE a.user_id = b.user_id AND a.bucket_id = b.bucket_id) AS count \
                 FROM buckets b WHERE b.user_id = ?1 AND b.backend = 'r2-assets' \
                   AND b.bucket_id IN (SELECT value FROM json_each(?2))",
                args![user_id, assets],
            )?,
        ],
    )
    .await?;
    let rows = |i: usize| {
        results
            .get(i)
            .ok_or_else(|| db::internal("database read", "a batch lost a result"))
    };
    for r in rows(0)?
        .results::<BatchDocRow>()
        .map_err(|e| db::internal("database row", e))?
    {
        let m = meta(
            &r.bucket_id,
            &MetaRow {
                version: r.version,
                size: r.size,
                updated_at: r.updated_at,
            },
        );
        out.documents.insert(r.bucket_id, Some(m));
    }
    for r in rows(1)?
        .results::<BatchAssetRow>()
        .map_err(|e| db::internal("database row", e))?
    {
        out.assets.insert(
            r.bucket_id.clone(),
            Some(AssetBucketMeta {
                bucket_id: r.bucket_id,
                version: nonneg(r.version),
                bytes: nonneg(r.bytes),
                count: nonneg(r.count),
            }),
        );
    }
    Ok(out)
}
