//! The record that lets a reload resume an upload: the pending upload of a picked `File`,
//! kept in the mirror under the file's fingerprint from before the session exists until it
//! completes or is given up. IndexedDB, no network (the protocol: `mod.rs`).

use super::UploadTarget;
use crate::mirror::{Mirror, UploadRecord};
use wasm_bindgen::JsCast;

/// One upload's record in the mirror. Only a `File` has one: a `Blob` cannot be picked again
/// after a reload, and two blobs of one size are not the same file.
pub(super) struct Resume<'a> {
    mirror: &'a Mirror,
    key: Option<String>,
}

impl<'a> Resume<'a> {
    pub(super) fn new(mirror: &'a Mirror, target: &UploadTarget<'_>) -> Resume<'a> {
        let key = target.blob.dyn_ref::<web_sys::File>().map(|file| {
            UploadRecord::fingerprint(
                target.bucket_id,
                target.name,
                file.size(),
                file.last_modified(),
                &file.type_(),
            )
        });
        Resume { mirror, key }
    }

    /// The mirror key (the file's fingerprint), if the upload can be resumed at all.
    pub(super) fn key(&self) -> Option<String> {
        self.key.clone()
    }

    /// The record a previous page left for this file.
    pub(super) async fn load(&self) -> Option<UploadRecord> {
        match &self.key {
            Some(k) => self.mirror.get_upload(k).await,
            None => None,
        }
    }

    /// Stores the record (a failure only costs resuming after a reload).
    pub(super) async fn save(&self, rec: &UploadRecord) {
        if self.key.is_none() {
            return;
        }
        if let Err(e) = self.mirror.put_upload(rec).await {
            super::warn(&format!("monodit-bridge: upload not resumable: {e}"));
        }
    }

    /// Removes the record: the upload completed or was given up.
    pub(super) async fn forget(&self) {
        if let Some(k) = &self.key {
            if let Err(e) = self.mirror.delete_upload(k).await {
                super::warn(&format!("monodit-bridge: upload record not removed: {e}"));
            }
        }
    }
}
