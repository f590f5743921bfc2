//! The local mirror: one IndexedDB database per user (via rexie), or memory when IndexedDB is
//! unavailable (private mode, blocked, disabled), with a console warning.
//!
//! Database `monodit-bridge:v1:<userId>` ([`db_name`]) partitions every byte by account, so
//! one user's documents, outbox and cache are never readable by another user's host.
//!
//! Object stores:
//! - [`STORE_DOCUMENTS`] (key `bucketId`): [`DocRecord`], the confirmed value/version kept
//!   apart from the optimistic value shown while writes are pending.
//! - [`STORE_OUTBOX`] (key `mutationId`): [`OutboxRecord`], durable unconfirmed writes.
//! - [`STORE_ASSETS`] (key `bucketId`): [`AssetRecord`], asset-list snapshots.
//! - [`STORE_CACHE`] (key `[instanceId, key]`, index `instanceId`): `ctx.cache` entries
//!   (see [`crate::cache`]); values are stored by structured clone, Blobs included.
//! - [`STORE_UPLOADS`] (key `fingerprint`, since schema version 2): [`UploadRecord`],
//!   resumable uploads not yet completed (see [`crate::uploads`]).
//!
//! Rules: a record that does not have the expected shape is a cache miss, never a panic; a
//! write that touches several stores (a `set`: document + outbox) is one transaction; nothing
//! but IndexedDB requests is awaited inside a transaction (it would auto-commit otherwise).

use monodit_core::{Error, ErrorCode};
use rexie::{Index, ObjectStore, Rexie, TransactionMode};
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

mod records;
pub use records::*;

/// Prefix of every mirror database name; the schema generation is part of it.
pub const DB_PREFIX: &str = "monodit-bridge:v1:";
/// IndexedDB schema version of the mirror: 2 added [`STORE_UPLOADS`] (an upgrade from 1 keeps
/// every other store as it is).
pub const DB_VERSION: u32 = 2;
/// Documents store.
pub const STORE_DOCUMENTS: &str = "documents";
/// Outbox store.
pub const STORE_OUTBOX: &str = "outbox";
/// Asset-list snapshots store.
pub const STORE_ASSETS: &str = "assets";
/// `ctx.cache` store.
pub const STORE_CACHE: &str = "cache";
/// Pending resumable uploads store.
pub const STORE_UPLOADS: &str = "uploads";
/// Index of [`STORE_CACHE`] on `instanceId`.
pub const CACHE_BY_INSTANCE: &str = "byInstance";
/// How long opening IndexedDB may take before the mirror falls back to memory (an open can
/// hang forever when another tab blocks an upgrade).
pub const OPEN_TIMEOUT_MS: i32 = 5_000;

/// The database name for one user.
pub fn db_name(user_id: &str) -> String {
    format!("{DB_PREFIX}{user_id}")
}

#[derive(Default)]
struct Memory {
    documents: HashMap<String, DocRecord>,
    /// Sorted by mutation id, like the IndexedDB store's keys: a Vec, not a BTreeMap, whose
    /// code for this one value type was ~5 KB of the host's wasm (bench/README.md).
    outbox: Vec<OutboxRecord>,
    assets: HashMap<String, AssetRecord>,
    cache: HashMap<(String, String), CacheRecord>,
    uploads: HashMap<String, UploadRecord>,
}

impl Memory {
    /// Where the outbox entry `id` is (Ok) or would go (Err).
    fn outbox_at(&self, id: &str) -> Result<usize, usize> {
        self.outbox
            .binary_search_by(|w| w.mutation_id.as_str().cmp(id))
    }
}

/// The per-user mirror.
pub struct Mirror {
    name: String,
    db: RefCell<Option<Rexie>>,
    memory: RefCell<Memory>,
    persistent: bool,
}

fn idb_err(what: &str, e: rexie::Error) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("local mirror: {what} failed ({e})"),
    )
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, Error> {
    crate::protocol::to_js_value(v)
}

/// Decodes a stored record; a wrong shape is None (treated as a miss).
fn from_js<T: DeserializeOwned>(v: JsValue) -> Option<T> {
    crate::protocol::from_js_value(&v)
}

fn warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}

impl Mirror {
    /// Opens (creating if needed) the user's database; falls back to memory with a console
    /// warning when IndexedDB cannot be used.
    pub async fn open(user_id: &str) -> Mirror {
        let name = db_name(user_id);
        let build = Rexie::builder(&name)
            .version(DB_VERSION)
            .add_object_store(ObjectStore::new(STORE_DOCUMENTS).key_path("bucketId"))
            .add_object_store(ObjectStore::new(STORE_OUTBOX).key_path("mutationId"))
            .add_object_store(ObjectStore::new(STORE_ASSETS).key_path("bucketId"))
            .add_object_store(
                ObjectStore::new(STORE_CACHE)
                    .key_path_array(["instanceId", "key"])
                    .add_index(Index::new(CACHE_BY_INSTANCE, "instanceId")),
            )
            .add_object_store(ObjectStore::new(STORE_UPLOADS).key_path("fingerprint"))
            .build();
        let timeout = crate::web::sleep(OPEN_TIMEOUT_MS);
        futures::pin_mut!(build);
        futures::pin_mut!(timeout);
        let opened = match futures::future::select(build, timeout).await {
            futures::future::Either::Left((Ok(db), _)) => Some(db),
            futures::future::Either::Left((Err(e), _)) => {
                warn(&format!(
                    "monodit-bridge: IndexedDB unavailable ({e}); keeping data in memory only: \
                     pending writes will not survive a reload"
                ));
                None
            }
            futures::future::Either::Right(_) => {
                warn("monodit-bridge: IndexedDB open is blocked; keeping data in memory only");
                None
            }
        };
        Mirror {
            name,
            persistent: opened.is_some(),
            db: RefCell::new(opened),
            memory: RefCell::new(Memory::default()),
        }
    }

    /// A memory-only mirror (what [`Mirror::open`] falls back to).
    pub fn memory(user_id: &str) -> Mirror {
        Mirror {
            name: db_name(user_id),
            persistent: false,
            db: RefCell::new(None),
            memory: RefCell::new(Memory::default()),
        }
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether data survives a reload (IndexedDB) or lives in memory only.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Closes the database (later calls act on an empty memory mirror).
    pub fn close(&self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
    }

    /// Runs `f` with the open database, or returns None when memory-backed or closed.
    fn with_db<R>(&self, f: impl FnOnce(&Rexie) -> R) -> Option<R> {
        self.db.borrow().as_ref().map(f)
    }

    async fn get_one<T: DeserializeOwned>(&self, store: &str, key: JsValue) -> Option<T> {
        let tx = self.with_db(|db| db.transaction(&[store], TransactionMode::ReadOnly))?;
        let tx = tx.ok()?;
        let st = tx.store(store).ok()?;
        let v = st.get(key).await.ok()??;
        from_js(v)
    }

    async fn put_one(&self, store: &str, value: JsValue) -> Result<(), Error> {
        let Some(tx) = self.with_db(|db| db.transaction(&[store], TransactionMode::ReadWrite))
        else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("write", e))?;
        let st = tx.store(store).map_err(|e| idb_err("write", e))?;
        st.put(&value, None)
            .await
            .map_err(|e| idb_err("write", e))?;
        finish(tx).await
    }

    /// The mirrored document of a bucket; a missing or corrupt record is None.
    pub async fn get_doc(&self, bucket_id: &str) -> Option<DocRecord> {
        if !self.persistent {
            return self.memory.borrow().documents.get(bucket_id).cloned();
        }
        let rec: DocRecord = self
            .get_one(STORE_DOCUMENTS, JsValue::from_str(bucket_id))
            .await?;
        (rec.bucket_id == bucket_id).then_some(rec)
    }

    /// Several mirrored documents read in ONE transaction (the buckets of the widgets a page
    /// mounts); missing and corrupt records are left out.
    pub async fn get_docs(&self, bucket_ids: &[String]) -> Vec<DocRecord> {
        if !self.persistent {
            let memory = self.memory.borrow();
            return bucket_ids
                .iter()
                .filter_map(|b| memory.documents.get(b).cloned())
                .collect();
        }
        let Some(Ok(tx)) =
            self.with_db(|db| db.transaction(&[STORE_DOCUMENTS], TransactionMode::ReadOnly))
        else {
            return Vec::new();
        };
        let Ok(st) = tx.store(STORE_DOCUMENTS) else {
            return Vec::new();
        };
        // Every request is made before the first answer is awaited.
        let reads = bucket_ids.iter().map(|b| st.get(JsValue::from_str(b)));
        let values = futures::future::join_all(reads).await;
        bucket_ids
            .iter()
            .zip(values)
            .filter_map(|(b, v)| {
                let rec: DocRecord = from_js(v.ok()??)?;
                (&rec.bucket_id == b).then_some(rec)
            })
            .collect()
    }

    /// Stores a document record.
    pub async fn put_doc(&self, doc: &DocRecord) -> Result<(), Error> {
        if !self.persistent {
            self.memory
                .borrow_mut()
                .documents
                .insert(doc.bucket_id.clone(), doc.clone());
            return Ok(());
        }
        self.put_one(STORE_DOCUMENTS, to_js(doc)?).await
    }

    /// Several `set`s (group commit): their document records and outbox entries in ONE
    /// transaction, so either all of them are durable or none.
    pub async fn write_sets(
        &self,
        docs: &[DocRecord],
        writes: &[OutboxRecord],
    ) -> Result<(), Error> {
        if !self.persistent {
            let mut m = self.memory.borrow_mut();
            for d in docs {
                m.documents.insert(d.bucket_id.clone(), d.clone());
            }
            for w in writes {
                match m.outbox_at(&w.mutation_id) {
                    Ok(i) => m.outbox[i] = w.clone(),
                    Err(i) => m.outbox.insert(i, w.clone()),
                }
            }
            return Ok(());
        }
        let d: Vec<JsValue> = docs.iter().map(to_js).collect::<Result<_, _>>()?;
        let o: Vec<JsValue> = writes.iter().map(to_js).collect::<Result<_, _>>()?;
        let Some(tx) = self.with_db(|db| {
            db.transaction(&[STORE_DOCUMENTS, STORE_OUTBOX], TransactionMode::ReadWrite)
        }) else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("set", e))?;
        let doc_store = tx.store(STORE_DOCUMENTS).map_err(|e| idb_err("set", e))?;
        let outbox = tx.store(STORE_OUTBOX).map_err(|e| idb_err("set", e))?;
        futures::try_join!(
            futures::future::try_join_all(d.iter().map(|v| doc_store.put(v, None))),
            futures::future::try_join_all(o.iter().map(|v| outbox.put(v, None))),
        )
        .map_err(|e| idb_err("set", e))?;
        finish(tx).await
    }

    /// Settled writes (confirmed or rolled back): the new document record and the removal of
    /// their outbox entries in ONE transaction.
    pub async fn write_settled(
        &self,
        doc: &DocRecord,
        mutation_ids: &[String],
    ) -> Result<(), Error> {
        if !self.persistent {
            let mut m = self.memory.borrow_mut();
            m.documents.insert(doc.bucket_id.clone(), doc.clone());
            m.outbox.retain(|w| !mutation_ids.contains(&w.mutation_id));
            return Ok(());
        }
        let d = to_js(doc)?;
        let Some(tx) = self.with_db(|db| {
            db.transaction(&[STORE_DOCUMENTS, STORE_OUTBOX], TransactionMode::ReadWrite)
        }) else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("settle", e))?;
        let docs = tx
            .store(STORE_DOCUMENTS)
            .map_err(|e| idb_err("settle", e))?;
        let outbox = tx.store(STORE_OUTBOX).map_err(|e| idb_err("settle", e))?;
        let deletes = mutation_ids
            .iter()
            .map(|id| outbox.delete(JsValue::from_str(id)));
        futures::try_join!(docs.put(&d, None), futures::future::try_join_all(deletes))
            .map_err(|e| idb_err("settle", e))?;
        finish(tx).await
    }

    /// Removes outbox entries (writes dropped before they were sent).
    pub async fn delete_outbox(&self, mutation_ids: &[String]) -> Result<(), Error> {
        if !self.persistent {
            let mut m = self.memory.borrow_mut();
            m.outbox.retain(|w| !mutation_ids.contains(&w.mutation_id));
            return Ok(());
        }
        let Some(tx) =
            self.with_db(|db| db.transaction(&[STORE_OUTBOX], TransactionMode::ReadWrite))
        else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("drop", e))?;
        let outbox = tx.store(STORE_OUTBOX).map_err(|e| idb_err("drop", e))?;
        futures::future::try_join_all(
            mutation_ids
                .iter()
                .map(|id| outbox.delete(JsValue::from_str(id))),
        )
        .await
        .map_err(|e| idb_err("drop", e))?;
        finish(tx).await
    }

    /// Marks the outbox entries of a PUT whose outcome is unknown with the mutation id it
    /// carried (`OutboxRecord::sent_as`), so whichever tab sends next repeats that PUT. Read
    /// and rewritten in one transaction: an entry settled or dropped meanwhile stays gone.
    pub async fn mark_sent(&self, mutation_ids: &[String], sent_as: &str) -> Result<(), Error> {
        if !self.persistent {
            let mut m = self.memory.borrow_mut();
            for e in m.outbox.iter_mut() {
                if mutation_ids.contains(&e.mutation_id) {
                    e.sent_as.get_or_insert_with(|| sent_as.to_string());
                }
            }
            return Ok(());
        }
        let Some(tx) =
            self.with_db(|db| db.transaction(&[STORE_OUTBOX], TransactionMode::ReadWrite))
        else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("mark", e))?;
        let outbox = tx.store(STORE_OUTBOX).map_err(|e| idb_err("mark", e))?;
        for id in mutation_ids {
            let found = outbox
                .get(JsValue::from_str(id))
                .await
                .map_err(|e| idb_err("mark", e))?;
            let Some(mut rec) = found.and_then(from_js::<OutboxRecord>) else {
                continue;
            };
            if rec.sent_as.is_none() {
                rec.sent_as = Some(sent_as.to_string());
                outbox
                    .put(&to_js(&rec)?, None)
                    .await
                    .map_err(|e| idb_err("mark", e))?;
            }
        }
        finish(tx).await
    }

    /// Every outbox entry, oldest first; corrupt entries are skipped.
    pub async fn outbox(&self) -> Vec<OutboxRecord> {
        let mut out: Vec<OutboxRecord> = if !self.persistent {
            self.memory.borrow().outbox.clone()
        } else {
            let all = async {
                let tx = self
                    .with_db(|db| db.transaction(&[STORE_OUTBOX], TransactionMode::ReadOnly))?
                    .ok()?;
                let st = tx.store(STORE_OUTBOX).ok()?;
                st.get_all(None, None).await.ok()
            };
            all.await
                .unwrap_or_default()
                .into_iter()
                .filter_map(from_js::<OutboxRecord>)
                .collect()
        };
        out.sort_by(|a, b| a.seq.total_cmp(&b.seq));
        out
    }

    /// Whether an outbox entry still exists (another tab may have settled it).
    pub async fn outbox_contains(&self, mutation_id: &str) -> bool {
        if !self.persistent {
            return self.memory.borrow().outbox_at(mutation_id).is_ok();
        }
        self.get_one::<OutboxRecord>(STORE_OUTBOX, JsValue::from_str(mutation_id))
            .await
            .is_some()
    }

    /// The mirrored asset list of a bucket; a missing or corrupt record is None.
    pub async fn get_assets(&self, bucket_id: &str) -> Option<AssetRecord> {
        if !self.persistent {
            return self.memory.borrow().assets.get(bucket_id).cloned();
        }
        let rec: AssetRecord = self
            .get_one(STORE_ASSETS, JsValue::from_str(bucket_id))
            .await?;
        (rec.bucket_id == bucket_id).then_some(rec)
    }

    /// Stores an asset-list snapshot.
    pub async fn put_assets(&self, rec: &AssetRecord) -> Result<(), Error> {
        if !self.persistent {
            self.memory
                .borrow_mut()
                .assets
                .insert(rec.bucket_id.clone(), rec.clone());
            return Ok(());
        }
        self.put_one(STORE_ASSETS, to_js(rec)?).await
    }

    /// The pending upload recorded under `fingerprint`; a missing or corrupt record is None.
    pub async fn get_upload(&self, fingerprint: &str) -> Option<UploadRecord> {
        if !self.persistent {
            return self.memory.borrow().uploads.get(fingerprint).cloned();
        }
        let rec: UploadRecord = self
            .get_one(STORE_UPLOADS, JsValue::from_str(fingerprint))
            .await?;
        (rec.fingerprint == fingerprint).then_some(rec)
    }

    /// Stores a pending upload (replacing the record of the same fingerprint).
    pub async fn put_upload(&self, rec: &UploadRecord) -> Result<(), Error> {
        if !self.persistent {
            self.memory
                .borrow_mut()
                .uploads
                .insert(rec.fingerprint.clone(), rec.clone());
            return Ok(());
        }
        self.put_one(STORE_UPLOADS, to_js(rec)?).await
    }

    /// Removes a pending upload's record (completed or given up).
    pub async fn delete_upload(&self, fingerprint: &str) -> Result<(), Error> {
        if !self.persistent {
            self.memory.borrow_mut().uploads.remove(fingerprint);
            return Ok(());
        }
        let Some(tx) =
            self.with_db(|db| db.transaction(&[STORE_UPLOADS], TransactionMode::ReadWrite))
        else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("upload record", e))?;
        let st = tx
            .store(STORE_UPLOADS)
            .map_err(|e| idb_err("upload record", e))?;
        st.delete(JsValue::from_str(fingerprint))
            .await
            .map_err(|e| idb_err("upload record", e))?;
        finish(tx).await
    }

    /// One cache entry; a missing or corrupt entry is None.
    pub async fn cache_get(&self, instance_id: &str, key: &str) -> Option<CacheRecord> {
        if !self.persistent {
            let k = (instance_id.to_string(), key.to_string());
            return self.memory.borrow().cache.get(&k).cloned();
        }
        let tx = self
            .with_db(|db| db.transaction(&[STORE_CACHE], TransactionMode::ReadOnly))?
            .ok()?;
        let st = tx.store(STORE_CACHE).ok()?;
        let v = st.get(CacheRecord::js_key(instance_id, key)).await.ok()??;
        CacheRecord::from_js(&v).filter(|r| r.instance_id == instance_id && r.key == key)
    }

    /// Every entry of one instance (values included; Blobs are handles, cheap to read).
    pub async fn cache_entries(&self, instance_id: &str) -> Vec<CacheRecord> {
        if !self.persistent {
            return self
                .memory
                .borrow()
                .cache
                .values()
                .filter(|r| r.instance_id == instance_id)
                .cloned()
                .collect();
        }
        let all = async {
            let tx = self
                .with_db(|db| db.transaction(&[STORE_CACHE], TransactionMode::ReadOnly))?
                .ok()?;
            let st = tx.store(STORE_CACHE).ok()?;
            let idx = st.index(CACHE_BY_INSTANCE).ok()?;
            let range = rexie::KeyRange::only(&JsValue::from_str(instance_id)).ok()?;
            idx.get_all(Some(range), None).await.ok()
        };
        all.await
            .unwrap_or_default()
            .iter()
            .filter_map(CacheRecord::from_js)
            .filter(|r| r.instance_id == instance_id)
            .collect()
    }

    /// Puts entries and deletes keys of one instance in ONE transaction.
    pub async fn cache_write(
        &self,
        instance_id: &str,
        put: &[CacheRecord],
        delete: &[String],
    ) -> Result<(), Error> {
        if !self.persistent {
            let mut m = self.memory.borrow_mut();
            for k in delete {
                m.cache.remove(&(instance_id.to_string(), k.clone()));
            }
            for r in put {
                m.cache
                    .insert((r.instance_id.clone(), r.key.clone()), r.clone());
            }
            return Ok(());
        }
        let Some(tx) =
            self.with_db(|db| db.transaction(&[STORE_CACHE], TransactionMode::ReadWrite))
        else {
            return Ok(());
        };
        let tx = tx.map_err(|e| idb_err("cache write", e))?;
        let st = tx
            .store(STORE_CACHE)
            .map_err(|e| idb_err("cache write", e))?;
        let deletes = delete
            .iter()
            .map(|k| st.delete(CacheRecord::js_key(instance_id, k)));
        let puts: Vec<JsValue> = put.iter().map(|r| r.to_js()).collect();
        let put_futs = puts.iter().map(|v| st.put(v, None));
        let (d, p) = futures::join!(
            futures::future::try_join_all(deletes),
            futures::future::try_join_all(put_futs)
        );
        d.map_err(|e| idb_err("cache delete", e))?;
        p.map_err(|e| {
            // Most often a value that cannot be structured-cloned (a function, a DOM node).
            Error::invalid(format!("cache: value cannot be stored ({e})"))
        })?;
        finish(tx).await
    }
}

/// Waits for a read-write transaction to commit.
async fn finish(tx: rexie::Transaction) -> Result<(), Error> {
    match tx.done().await {
        Ok(r) if r.is_committed() => Ok(()),
        Ok(_) => Err(Error::new(
            ErrorCode::Internal,
            "local mirror: transaction aborted",
        )),
        Err(e) => Err(idb_err("commit", e)),
    }
}
