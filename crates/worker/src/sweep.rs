//! The Worker's sweep, run by the cron trigger in `wrangler.toml` (the native server sweeps
//! every `--sweep-interval-secs`, `server/src/sweep.rs`): expired upload sessions (their
//! reservations released, their R2 multipart uploads aborted), writes an invocation left
//! unfinished, forgotten idempotency keys past their memory, and recorded deletions
//! (`doomed_objects`) still to do in R2.
//!
//! A Worker invocation can end mid-write without running its cleanup (its client went away);
//! no restart follows to reset what it held, as natively (`Db::recover`). So a pending record
//! older than the upload TTL is such a leftover: a single-shot upload's gives back the bytes it
//! reserved (migration 0007) and dooms its object; a completion's is dropped, so the session
//! can complete again (its joined object, named by `upload_multipart`, stays).
//!
//! Unlike the native sweep it lists no objects: every Worker write records its object before
//! the first byte (`pending_objects`, `upload_multipart`) and dooms it in the batch that stops
//! referencing it, and R2 aborts incomplete multipart uploads by itself.

use crate::args;
use crate::db::{self, Db};
use crate::env::WorkerEnv;
use crate::uploads;
use monodit_core::Error;
use monodit_service::Clock;
use serde::Deserialize;

/// How long a completed session (or a single-shot idempotency key) is remembered at least
/// after the asset it produced is gone (the native `store::uploads::KEY_MEMORY_MS`).
pub const KEY_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// Most batches of work one sweep does per kind, so one invocation stays short; the next
/// sweep continues.
const ROUNDS: usize = 10;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Open sessions past their TTL, removed.
    pub expired_uploads: usize,
    /// Recorded deletions finished in R2.
    pub doomed_objects: usize,
    /// Writes an invocation left unfinished, ended.
    pub abandoned_writes: usize,
}

/// One sweep.
pub async fn run(db: &Db, objects: &worker::Bucket, env: &WorkerEnv) -> Result<SweepReport, Error> {
    let mut report = SweepReport::default();
    for _ in 0..ROUNDS {
        let (found, removed) = uploads::expire(db, objects, env, None).await?;
        report.expired_uploads += removed;
        if found < 100 {
            break;
        }
    }
    report.abandoned_writes = end_abandoned(db, env).await?;
    let cutoff = (env.now_ms() as i64).saturating_sub(KEY_MEMORY_MS);
    db.0.batch(vec![
        db.stmt(
            "DELETE FROM uploads WHERE state = 'done' AND touched_at < ?1 \
             AND object_key NOT IN (SELECT object_key FROM assets)",
            args![cutoff],
        )?,
        db.stmt(
            "DELETE FROM asset_upload_keys WHERE done = 1 AND created_at < ?1 \
             AND object_key NOT IN (SELECT object_key FROM assets)",
            args![cutoff],
        )?,
    ])
    .await
    .map_err(|e| db::internal("sweep", e))?;
    #[derive(Deserialize)]
    struct Doomed {
        object_key: String,
    }
    for _ in 0..ROUNDS {
        let doomed: Vec<Doomed> = db
            .all(
                "SELECT object_key FROM doomed_objects ORDER BY created_at LIMIT 100",
                args![],
            )
            .await?;
        if doomed.is_empty() {
            break;
        }
        let keys: Vec<&str> = doomed.iter().map(|d| d.object_key.as_str()).collect();
        if let Err(e) = objects.delete_multiple(keys.clone()).await {
            // R2 refuses for now: the records stay for the next sweep.
            worker::console_error!("sweep: R2 delete of {} objects: {e}", keys.len());
            break;
        }
        let statements = keys
            .iter()
            .map(|k| {
                db.stmt(
                    "DELETE FROM doomed_objects WHERE object_key = ?1",
                    args![*k],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        db.0.batch(statements)
            .await
            .map_err(|e| db::internal("sweep", e))?;
        report.doomed_objects += keys.len();
        if keys.len() < 100 {
            break;
        }
    }
    Ok(report)
}

#[derive(Deserialize)]
struct Pending {
    object_key: String,
    user_id: String,
    upload_id: Option<String>,
    reserved: Option<i64>,
}

/// Ends pending records older than the upload TTL (at most 100 per sweep), each in one
/// guarded batch (the record is still there).
async fn end_abandoned(db: &Db, env: &WorkerEnv) -> Result<usize, Error> {
    let now = env.now_ms() as i64;
    let cutoff = now.saturating_sub(env.upload_ttl_ms());
    let stale: Vec<Pending> = db
        .all(
            "SELECT object_key, user_id, upload_id, reserved FROM pending_objects \
             WHERE created_at < ?1 ORDER BY created_at LIMIT 100",
            args![cutoff],
        )
        .await?;
    let mut ended = 0;
    for p in stale {
        let key = p.object_key.as_str();
        let mut batch = vec![
            db::guard(
                db,
                "EXISTS (SELECT 1 FROM pending_objects WHERE object_key = ?1)",
                args![key],
            )?,
            db.stmt(
                "DELETE FROM pending_objects WHERE object_key = ?1",
                args![key],
            )?,
        ];
        if p.upload_id.is_none() {
            batch.extend([
                db.stmt(
                    "UPDATE users SET reserved_bytes = MAX(0, reserved_bytes - ?2) WHERE id = ?1",
                    args![p.user_id.as_str(), p.reserved.unwrap_or(0).max(0)],
                )?,
                db.stmt(
                    "DELETE FROM asset_upload_keys WHERE user_id = ?1 AND object_key = ?2 AND done = 0",
                    args![p.user_id.as_str(), key],
                )?,
            ]);
        }
        // A completion's joined object stays when its session names it; anything else goes.
        batch.push(db.stmt(
            "INSERT OR IGNORE INTO doomed_objects (object_key, created_at) SELECT ?1, ?2 \
             WHERE NOT EXISTS (SELECT 1 FROM upload_multipart WHERE object_key = ?1)",
            args![key, now],
        )?);
        if db.guarded_batch(batch).await? {
            ended += 1;
        }
    }
    Ok(ended)
}
