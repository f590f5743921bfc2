//! On-disk staging of resumable upload parts: `<dir>/<uploadId>/<partNumber>`.
//!
//! A part streams into a temporary file next to it, its length is checked, and it is renamed
//! over the part (so re-putting a part replaces it atomically); the database row comes after
//! the rename. Writes in progress are registered here, so the sweep (which deletes every file
//! no row names) never takes a file between its rename and its row.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The staging directory and the part files being written right now.
pub struct Staging {
    dir: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

/// A part file being written; dropping it unregisters the write and removes the temporary
/// file if it was not renamed (a failed or abandoned write leaves nothing).
pub struct PartWrite {
    /// Where the bytes stream first.
    pub tmp: PathBuf,
    /// The part's final path.
    pub part: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Drop for PartWrite {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.remove(&self.tmp);
        active.remove(&self.part);
    }
}

impl Staging {
    /// Staging under `dir` (created).
    pub fn new(dir: PathBuf) -> std::io::Result<Staging> {
        std::fs::create_dir_all(&dir)?;
        Ok(Staging {
            dir,
            active: Default::default(),
        })
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one upload's parts. Upload ids are server-generated hex.
    pub fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.dir.join(upload_id)
    }

    /// The file of one stored part.
    pub fn part_path(&self, upload_id: &str, part_number: u32) -> PathBuf {
        self.upload_dir(upload_id).join(part_number.to_string())
    }

    /// Registers a write of part `part_number` (its temporary name is unique, so concurrent
    /// puts of one part never share a file; the last rename wins).
    pub fn begin(&self, upload_id: &str, part_number: u32) -> PartWrite {
        let part = self.part_path(upload_id, part_number);
        let tmp = self.upload_dir(upload_id).join(format!(
            "{part_number}.{}.tmp",
            uuid::Uuid::new_v4().simple()
        ));
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.insert(tmp.clone());
        active.insert(part.clone());
        PartWrite {
            tmp,
            part,
            active: self.active.clone(),
        }
    }

    /// The files being written right now.
    pub fn active(&self) -> HashSet<PathBuf> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Removes one upload's parts (missing is fine).
    pub async fn remove_upload(&self, upload_id: &str) {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(%e, upload_id, "could not remove staged parts"),
        }
    }

    /// Every file under the staging directory `dir`, by upload directory, and every stray
    /// entry at the top level (blocking: run it off the async threads). Read before the
    /// database, so anything listed here was created after the row that names it.
    pub fn list(dir: &Path) -> StagingListing {
        let mut listing = StagingListing::default();
        let Ok(top) = std::fs::read_dir(dir) else {
            return listing;
        };
        for entry in top.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if !path.is_dir() {
                listing.strays.push(path);
                continue;
            }
            let mut files = Vec::new();
            if let Ok(inner) = std::fs::read_dir(&path) {
                for f in inner.flatten() {
                    files.push(f.path());
                }
            }
            listing.uploads.push((name, path, files));
        }
        listing
    }
}

/// What [`Staging::list`] found.
#[derive(Default)]
pub struct StagingListing {
    /// (upload id, its directory, the files in it).
    pub uploads: Vec<(String, PathBuf, Vec<PathBuf>)>,
    /// Top-level files (nothing should be there).
    pub strays: Vec<PathBuf>,
}
