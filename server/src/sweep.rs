//! The sweep: removes what no row references, so a crash at any point of an upload, a part
//! or a deletion leaves nothing behind for long.
//!
//! Every writer records its intent first (a `pending_objects` row before an object's first
//! byte, an `uploads` row before a part's directory, a registered [`crate::staging::PartWrite`]
//! until a part's row commits), and the sweep lists files *before* it reads the database.
//! So anything it lists was created after the row that protects it, and it deletes only
//! what is unreferenced: expired sessions (their reservation released), stored objects named
//! by neither `assets` nor `pending_objects` (including the `key#n` staging files a killed
//! local write leaves), and staged parts of no open session. Deletions are recorded too
//! (`doomed_objects`, written with the refund): the sweep finishes those first, by key,
//! without listing. It runs at start-up, before the server accepts requests, and every
//! `Config::sweep_interval_secs`.
//!
//! On S3/R2 an interrupted multipart upload is invisible to listings: the bucket's lifecycle
//! rule "abort incomplete multipart uploads" removes those (R2 applies one by default).

use crate::error::{AppError, AppResult};
use crate::objects;
use crate::store::{assets as store_assets, uploads};
use crate::AppState;
use futures::TryStreamExt;
use rusqlite::{params, OptionalExtension};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects whose recorded deletion (asset deleted, write failed or cut by a restart)
    /// had not finished.
    pub doomed_objects: u64,
    /// Open sessions past their TTL (reservation released).
    pub expired_uploads: usize,
    /// Stored objects (or their interrupted-write files) no row references.
    pub orphan_objects: usize,
    /// Staged part files of no open session, and leftover temporary files.
    pub staging_files: usize,
}

/// One stored object as listed: its key and how to delete it.
enum Listed {
    /// A file of a local store (`key` or `key#n`).
    File(String, PathBuf),
    /// An object of a remote store.
    Object(String),
}

impl Listed {
    fn key(&self) -> &str {
        match self {
            Listed::File(k, _) | Listed::Object(k) => k,
        }
    }
}

async fn list_objects(st: &AppState) -> AppResult<Vec<Listed>> {
    if let Some(root) = st.objects_root.clone() {
        let dir = root.join(objects::ASSETS_PREFIX);
        return tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    let key = name.split('#').next().unwrap_or("").to_string();
                    out.push(Listed::File(key, e.path()));
                }
            }
            out
        })
        .await
        .map_err(|e| AppError::internal("sweep listing", e));
    }
    let prefix = object_store::path::Path::from(objects::ASSETS_PREFIX);
    let metas: Vec<_> = st.objects.list(Some(&prefix)).try_collect().await?;
    Ok(metas
        .into_iter()
        .filter_map(|m| m.location.filename().map(|f| Listed::Object(f.to_string())))
        .collect())
}

async fn sweep_objects(st: &AppState) -> AppResult<usize> {
    let listed = list_objects(st).await?;
    if listed.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = listed.iter().map(|l| l.key().to_string()).collect();
    let referenced: HashSet<String> = st
        .db
        .read(move |tx| {
            let mut asset = tx.prepare_cached("SELECT 1 FROM assets WHERE object_key = ?1")?;
            let mut pending =
                tx.prepare_cached("SELECT 1 FROM pending_objects WHERE object_key = ?1")?;
            let mut out = HashSet::new();
            for k in keys {
                let named = asset
                    .query_row(params![k], |_| Ok(()))
                    .optional()?
                    .is_some()
                    || pending
                        .query_row(params![k], |_| Ok(()))
                        .optional()?
                        .is_some();
                if named {
                    out.insert(k);
                }
            }
            Ok(out)
        })
        .await?;
    let mut removed = 0;
    for l in listed {
        if referenced.contains(l.key()) {
            continue;
        }
        let gone = match &l {
            Listed::File(_, path) => match tokio::fs::remove_file(path).await {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(%e, path = %path.display(), "sweep could not remove a file");
                    false
                }
            },
            Listed::Object(key) => match st.objects.delete(&objects::path_of(key)).await {
                Ok(()) => true,
                Err(object_store::Error::NotFound { .. }) => false,
                Err(e) => {
                    tracing::warn!(%e, key, "sweep could not delete an object");
                    false
                }
            },
        };
        if gone {
            removed += 1;
        }
    }
    Ok(removed)
}

async fn sweep_staging(st: &AppState) -> AppResult<usize> {
    let dir = st.staging.dir().to_path_buf();
    let listing = tokio::task::spawn_blocking(move || crate::staging::Staging::list(&dir))
        .await
        .map_err(|e| AppError::internal("staging listing", e))?;
    let active = st.staging.active();
    let open = st.db.read(uploads::open_parts).await?;
    let mut doomed: Vec<PathBuf> = listing.strays;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (upload_id, dir, files) in listing.uploads {
        let stored = open.get(&upload_id);
        for f in files {
            if active.contains(&f) {
                continue;
            }
            let part: Option<u32> = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok());
            let keep = matches!((stored, part), (Some(parts), Some(n)) if parts.contains(&n));
            if !keep {
                doomed.push(f);
            }
        }
        if stored.is_none() {
            dirs.push(dir);
        }
    }
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        for f in doomed {
            let outcome = if f.is_dir() {
                std::fs::remove_dir_all(&f)
            } else {
                std::fs::remove_file(&f)
            };
            if outcome.is_ok() {
                removed += 1;
            }
        }
        // Empty now unless a write is still running there (it fails and cleans up).
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        removed
    })
    .await
    .map_err(|e| AppError::internal("staging sweep", e))?;
    Ok(removed)
}

/// One sweep: expired sessions, orphan objects, stray staging files.
pub async fn run(st: &AppState) -> AppResult<SweepReport> {
    let ttl_ms = st.upload_ttl_ms();
    let expired = st
        .db
        .write(move |tx| {
            let ids = uploads::expire(tx, None, ttl_ms)?;
            uploads::prune_keys(tx)?;
            Ok(ids)
        })
        .await?;
    for id in &expired {
        st.staging.remove_upload(id).await;
    }
    // Recorded deletions first: they need no listing (cheap on S3/R2), in bounded batches.
    let mut doomed_objects = 0;
    for _ in 0..100 {
        let batch = st.db.read(|tx| store_assets::doomed(tx, 1000)).await?;
        if batch.is_empty() {
            break;
        }
        let gone = crate::http::assets::delete_objects(st, &batch).await;
        doomed_objects += gone;
        if gone < batch.len() as u64 {
            break; // the store refuses some deletes: retry at the next sweep
        }
    }
    let orphan_objects = sweep_objects(st).await?;
    let staging_files = sweep_staging(st).await?;
    let report = SweepReport {
        doomed_objects,
        expired_uploads: expired.len(),
        orphan_objects,
        staging_files,
    };
    if report != SweepReport::default() {
        tracing::info!(?report, "sweep removed unreferenced data");
    }
    Ok(report)
}

/// Sweeps every `interval_secs` until aborted.
pub fn spawn(st: Arc<AppState>, interval_secs: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(interval_secs.max(1)));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = run(&st).await {
                tracing::warn!(%e, "sweep failed");
            }
        }
    })
}
