//! HTTP wire types between the host (SDK) and the backend, and the route table.
//!
//! Kept apart from logic so the server and the SDK compile against the same shapes.
//! JSON is camelCase. Times are Unix epoch milliseconds. `server/openapi.yaml` describes the
//! same routes for other clients; a server test keeps the two in step.
//! The patterns and the builders of concrete paths are in [`crate::routes`].
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/v1/health` | → `{ok:true}` (no auth) |
//! | GET | `/v1/openapi.json` | → the OpenAPI 3.1 description (`server/openapi.yaml`), no auth |
//! | GET | `/v1/me` | → [`Me`] |
//! | GET | `/v1/usage` | → [`Usage`] |
//! | GET | `/v1/buckets` | → `[BucketInfo]` |
//! | DELETE | `/v1/buckets/{backend}/{bucketId}` | → [`DeletedBucket`] |
//! | GET | `/v1/documents/{bucketId}?missing=empty` | → [`Document`] (`ETag: "<version>"`, `If-None-Match` → 304; never written: 404, or 204 with `missing=empty`) |
//! | GET | `/v1/documents/{bucketId}/meta` | → [`DocumentMeta`] |
//! | PUT | `/v1/documents/{bucketId}` | [`PutDocument`] (`If-Match` optional) → [`DocumentMeta`] |
//! | POST | `/v1/meta` | [`BatchMetaRequest`] → [`BatchMetaResponse`] |
//! | POST | `/v1/assets/{bucketId}?name=&schemaId=&schemaVersion=` | raw bytes, `Content-Type`, `Content-Length` required, `Idempotency-Key` optional → [`AssetInfo`] |
//! | GET | `/v1/assets/{bucketId}` | → [`AssetList`] |
//! | DELETE | `/v1/assets/{bucketId}/{objectKey}` | → `{deleted:true}` |
//! | GET | `/v1/objects/{objectKey}?exp=&sig=` | signed download, no auth header |
//! | POST | `/v1/uploads` | [`NewUpload`] → [`UploadSession`] (same `idempotencyKey`: the same session, `completed` once done) |
//! | GET | `/v1/uploads/{uploadId}` | → [`UploadSession`] |
//! | PUT | `/v1/uploads/{uploadId}/parts/{partNumber}` | raw bytes, `Content-Length` = the part's size → [`UploadPart`] |
//! | POST | `/v1/uploads/{uploadId}/complete` | → [`AssetInfo`] (409 CONFLICT with `detail.missing` until every part is stored) |
//! | DELETE | `/v1/uploads/{uploadId}` | → `{deleted:true}` |
//! | PUT | `/v1/instances/{instanceId}` | [`InstanceRegistration`] → [`InstanceInfo`] |
//! | GET | `/v1/instances` | → `[InstanceInfo]` |
//! | DELETE | `/v1/instances/{instanceId}` | → `{deleted:true}` |
//! | POST | `/v1/collections/{pluginId}/{collection}/{op}` | [`CollectionOp`] args → op result |
//! | GET | `/v1/kv/{pluginId}?prefix=` | → [`crate::kv::KvList`] (key order, at most `kv::MAX_LIST`) |
//! | GET | `/v1/kv/{pluginId}/{key}` | → [`crate::kv::KvEntry`] (404 NOT_FOUND when unset) |
//! | PUT | `/v1/kv/{pluginId}/{key}` | [`crate::kv::PutKv`] → [`crate::kv::KvEntry`] |
//! | DELETE | `/v1/kv/{pluginId}/{key}` | → `{deleted: bool}` |
//! | GET | `/v1/plugins` | → `[PluginInfo]`: every plugin id with instances, data or a pin |
//! | DELETE | `/v1/plugins/{pluginId}` | → [`DeletedPlugin`]: its collection items and kv entries |
//! | PUT | `/v1/dev/plan` | [`SetPlan`] (only with `--dev`) → [`Me`] |
//! | POST | `/v1/dev/users` | [`SetPlan`] (only with `--dev`) → [`NewUser`]: a fresh user per test |
//! | PUT | `/v1/dev/faults` | [`SetFaults`] or [`DevFaults`] (only with `--dev`) → [`DevFaults`]: injected 500s, lost upload answers |
//! | POST | `/v1/dev/explain/{pluginId}/{collection}` | query options as for `query` (only with `--dev`) → [`QueryPlanExplained`]: `EXPLAIN QUERY PLAN` of the planned query |
//!
//! Every error answers with the status of its code and an [`crate::errors::Error`] body
//! `{code, message, detail?}`.

use crate::buckets::Backend;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Maximum size of one d1-json document, in bytes of its JSON encoding.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;
/// Maximum number of buckets in one batch meta request.
pub const MAX_BATCH_META: usize = 1000;
/// Maximum number of items in one collection batch (getMany, putMany, deleteMany).
pub const MAX_COLLECTION_BATCH: usize = 1000;
/// Maximum size of one collection item, in bytes of its JSON encoding.
pub const MAX_ITEM_BYTES: u64 = 1024 * 1024;

/// A subscription plan: Free has storage gated off (PLAN_REQUIRED), Pro 5 GB, add-ons 5 GB each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// 100 MB logical limit, but storage APIs answer PLAN_REQUIRED.
    Free,
    /// 5 GB plus 5 GB per add-on.
    Pro,
}

/// Bytes in one GB step of the plans (decimal, as marketed).
pub const GB: u64 = 1_000_000_000;
/// Bytes in one MB (decimal).
pub const MB: u64 = 1_000_000;

impl Plan {
    /// The storage limit in bytes for this plan with `addons` 5 GB add-ons.
    pub fn limit_bytes(self, addons: u32) -> u64 {
        match self {
            Plan::Free => 100 * MB,
            // Saturating: an absurd add-on count (a dev route takes any u32) must not overflow.
            Plan::Pro => (5 * GB).saturating_mul(1 + u64::from(addons)),
        }
    }

    /// Whether the storage APIs are open on this plan.
    pub fn storage_enabled(self) -> bool {
        matches!(self, Plan::Pro)
    }
}

/// `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// Opaque user id.
    pub user_id: String,
    /// Current plan.
    pub plan: Plan,
    /// Number of 5 GB add-ons.
    pub addons: u32,
    /// Bytes used across documents, assets, collections and key-value entries.
    pub used_bytes: u64,
    /// The plan's limit in bytes.
    pub limit_bytes: u64,
}

/// `PUT /v1/dev/plan` (demo only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetPlan {
    /// New plan.
    pub plan: Plan,
    /// New add-on count.
    #[serde(default)]
    pub addons: u32,
    /// Dev and tests only: replaces the plan's limit (bytes), so quota paths such as the
    /// `QUOTA_EXCEEDED` can be exercised without filling 5 GB. `None` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
}

/// `PUT /v1/dev/faults` (dev mode only): the caller's next requests fail with a real
/// `500 INTERNAL` from the server, so clients' handling of server faults can be tested
/// end to end. The answer is the caller's faults still to come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetFaults {
    /// How many of the caller's next `PUT /v1/documents/{bucketId}` answer 500 INTERNAL
    /// (without writing anything). 0 clears.
    #[serde(default)]
    pub document_put_errors: u32,
}

/// `POST /v1/dev/users` (dev mode only): a fresh user and its bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    /// Opaque user id.
    pub user_id: String,
    /// Bearer token (shown once; stored hashed).
    pub token: String,
}

/// The contract a bucket was created with: only widgets declaring the same one may use it
/// ([`crate::buckets::compatible`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    /// `d1-json` or `r2-assets`.
    pub backend: Backend,
    /// Logical schema identifier.
    pub schema_id: String,
    /// Integer schema version (≥ 1).
    pub schema_version: u32,
}

/// Lightweight document metadata: what revalidation compares, with no payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMeta {
    /// The bucket id.
    pub bucket_id: String,
    /// Monotonic version, 1 for the first write.
    pub version: u64,
    /// Payload size in bytes (what quota counts).
    pub size: u64,
    /// Last write time (epoch ms).
    pub updated_at: i64,
}

/// `GET /v1/documents/{bucketId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Metadata of this version.
    #[serde(flatten)]
    pub meta: DocumentMeta,
    /// The JSON value.
    pub value: Value,
    /// The bucket's contract.
    pub contract: Contract,
}

/// `PUT /v1/documents/{bucketId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutDocument {
    /// The new JSON value.
    pub value: Value,
    /// Contract schema id; must match the bucket's (or creates it).
    pub schema_id: String,
    /// Contract schema version.
    pub schema_version: u32,
    /// Client-generated id; a retried PUT with the same id is applied once and returns the
    /// version it produced the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation_id: Option<String>,
    /// Apply only if the current version equals this (same as `If-Match`); 0 = must not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

/// `POST /v1/meta`: metadata of many buckets in one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetaRequest {
    /// d1-json bucket ids.
    #[serde(default)]
    pub documents: Vec<String>,
    /// r2-assets bucket ids.
    #[serde(default)]
    pub assets: Vec<String>,
}

/// Asset bucket metadata: its change counter moves on every upload and delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetBucketMeta {
    /// The bucket id.
    pub bucket_id: String,
    /// Change counter.
    pub version: u64,
    /// Number of assets.
    pub count: u64,
    /// Total object bytes.
    pub bytes: u64,
}

/// Answer to [`BatchMetaRequest`]; a bucket that does not exist maps to `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetaResponse {
    /// Per requested document bucket.
    pub documents: BTreeMap<String, Option<DocumentMeta>>,
    /// Per requested asset bucket.
    pub assets: BTreeMap<String, Option<AssetBucketMeta>>,
}

/// One asset, as `ctx.assets.list()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetInfo {
    /// Server-generated key; file names are metadata only.
    pub object_key: String,
    /// The uploaded file's name (sanitised).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// MIME type as uploaded.
    pub content_type: String,
    /// Epoch ms.
    pub uploaded_at: i64,
    /// Signed, expiring download URL usable in `<img src>`.
    pub url: String,
    /// When [`AssetInfo::url`] stops working, epoch ms: a client re-lists before then instead
    /// of reading the expiry out of the URL. Absent from answers stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<i64>,
}

/// `GET /v1/assets/{bucketId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetList {
    /// The bucket id.
    pub bucket_id: String,
    /// Change counter at the time of listing (0 when the bucket does not exist yet).
    pub version: u64,
    /// Assets, oldest first.
    pub assets: Vec<AssetInfo>,
}

/// A widget instance connected to a bucket (for topology).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedInstance {
    /// The instance id.
    pub instance_id: String,
    /// The binding key in that instance's manifest.
    pub binding_key: String,
    /// True when the bucket is the instance's own default (the topology's "Isolated").
    pub isolated: bool,
}

/// `GET /v1/buckets`: one bucket of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketInfo {
    /// The contract it was created with.
    #[serde(flatten)]
    pub contract: Contract,
    /// The bucket id.
    pub bucket_id: String,
    /// Bytes counted against quota.
    pub bytes: u64,
    /// Document version or asset change counter.
    pub version: u64,
    /// Epoch ms.
    pub created_at: i64,
    /// Widget instances whose bindings resolve to this bucket (themes excluded).
    pub instances: Vec<ConnectedInstance>,
}

/// `DELETE /v1/buckets/{backend}/{bucketId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedBucket {
    /// Bytes given back to the quota.
    pub refunded_bytes: u64,
    /// Objects removed from the object store.
    pub deleted_objects: u64,
    /// Instances whose config key was cleared (they fall back to isolated).
    pub disconnected_instances: Vec<String>,
}

/// A plugin id of the user, in `GET /v1/plugins` (for a host's storage settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    /// The manifest id.
    pub plugin_id: String,
    /// The source the id is pinned to (core `plugins`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Registered instances whose manifest claims it.
    pub instances: Vec<String>,
    /// Collection items stored for it, and their bytes (counted in the quota).
    pub items: u64,
    /// Bytes of those items.
    pub item_bytes: u64,
    /// `ctx.kv` entries stored for it.
    pub kv_keys: u64,
    /// Bytes of those entries' values.
    pub kv_bytes: u64,
}

/// `DELETE /v1/plugins/{pluginId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedPlugin {
    /// Collection items removed.
    pub deleted_items: u64,
    /// `ctx.kv` entries removed.
    pub deleted_keys: u64,
    /// Bytes given back to the quota.
    pub refunded_bytes: u64,
    /// Whether the id's pin was released (no instance holds it any more).
    pub released: bool,
}

/// Per-bucket usage line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketUsage {
    /// Backend.
    pub backend: Backend,
    /// Bucket id.
    pub bucket_id: String,
    /// Bytes.
    pub bytes: u64,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Plan.
    pub plan: Plan,
    /// Total bytes used.
    pub used_bytes: u64,
    /// Limit in bytes.
    pub limit_bytes: u64,
    /// Bytes used by plugin collections.
    pub collection_bytes: u64,
    /// Bytes used by plugin key-value entries (`ctx.kv`, their values as compact JSON).
    /// Absent from older servers, hence the default.
    #[serde(default)]
    pub kv_bytes: u64,
    /// Per bucket.
    pub buckets: Vec<BucketUsage>,
}

/// Whether an instance is a widget or a dynamic theme (themes are not in topology).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceKind {
    /// A dashboard widget.
    Widget,
    /// A dynamic theme.
    Theme,
}

/// `PUT /v1/instances/{instanceId}`: the host registers what it mounts.
/// Registering a manifest with collections also registers the plugin's declaration
/// (creating and dropping expression indexes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRegistration {
    /// Widget or theme.
    pub kind: InstanceKind,
    /// The manifest JSON (validated by `manifest::Manifest::parse`).
    pub manifest: Value,
    /// The instance config (string values for bucket config keys).
    #[serde(default)]
    pub config: serde_json::Map<String, Value>,
    /// Where the widget's code comes from, as the host saw it (see [`crate::plugins`]): a
    /// plugin id is pinned to the source of the instances holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A registered instance with its resolved buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// The instance id.
    pub instance_id: String,
    /// Widget or theme.
    pub kind: InstanceKind,
    /// The manifest id (plugin id for collections); empty when the manifest names none.
    pub widget_id: String,
    /// The manifest as registered.
    pub manifest: Value,
    /// The config as registered.
    pub config: serde_json::Map<String, Value>,
    /// Binding key → resolved bucket id.
    pub buckets: BTreeMap<String, String>,
    /// Where the widget's code comes from, when its host said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The collection operations of `ctx.storage.<name>`, as
/// `POST /v1/collections/{pluginId}/{collection}/{op}` bodies. The op name in the path matches
/// the `op` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum CollectionOp {
    /// → `{item: data | null}`
    Get {
        /// Item id.
        id: String,
    },
    /// → `{}`
    Put {
        /// Item id.
        id: String,
        /// Item data (JSON object or any JSON value).
        data: Value,
    },
    /// → `{deleted: bool}`
    Delete {
        /// Item id.
        id: String,
    },
    /// → `{exists: bool}`
    Exists {
        /// Item id.
        id: String,
    },
    /// → `{items: {id: data}}` (missing ids absent)
    GetMany {
        /// Item ids.
        ids: Vec<String>,
    },
    /// → `{}`; one transaction.
    PutMany {
        /// Items.
        items: Vec<CollectionItem>,
    },
    /// → `{deleted: n}`; one transaction.
    DeleteMany {
        /// Item ids.
        ids: Vec<String>,
    },
    /// → [`QueryResult`]
    Query(crate::query::QueryOptions),
    /// → `{count: n}`
    Count {
        /// Optional filter.
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        where_: Option<crate::query::WhereClause>,
    },
}

/// `{id, data}` as in `putMany` and query results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionItem {
    /// Item id.
    pub id: String,
    /// Item data.
    pub data: Value,
}

/// One page of `query()` results (`PaginatedResult<{id, data}>` in the widget typings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    /// The page.
    pub items: Vec<CollectionItem>,
    /// Present when more results exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Whether more results exist.
    pub has_more: bool,
}

/// Part size of resumable uploads (`POST /v1/uploads`), chosen by the server and echoed in
/// [`UploadSession::part_size`]: R2/S3 multipart uploads need parts of at least 5 MiB except
/// the last.
pub const UPLOAD_PART_SIZE: u64 = 8 * 1024 * 1024;

/// `POST /v1/uploads`: start a resumable upload, or find it again with the same
/// `idempotencyKey` (1-128 characters of `[A-Za-z0-9_-]`). The full `size` is reserved at
/// once, with the same checks as a single-shot upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUpload {
    /// The r2-assets bucket the file goes to.
    pub bucket_id: String,
    /// The file name (metadata only, sanitised like single-shot names).
    #[serde(default)]
    pub name: String,
    /// MIME type; stored as its normalised `type/subtype`.
    #[serde(default)]
    pub content_type: String,
    /// Total bytes.
    pub size: u64,
    /// Contract schema id.
    pub schema_id: String,
    /// Contract schema version.
    pub schema_version: u32,
    /// Names this upload for retries: the same key answers the same session.
    pub idempotency_key: String,
}

/// One stored part of a resumable upload (also the answer of
/// `PUT /v1/uploads/{uploadId}/parts/{partNumber}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadPart {
    /// From 1.
    pub part_number: u32,
    /// Bytes.
    pub size: u64,
}

/// A resumable upload as `POST /v1/uploads` and `GET /v1/uploads/{uploadId}` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    /// Server-generated id.
    pub upload_id: String,
    /// The target bucket.
    pub bucket_id: String,
    /// Total bytes.
    pub size: u64,
    /// Bytes per part (the last may be shorter): part n covers
    /// `[(n-1)*partSize, min(n*partSize, size))`.
    pub part_size: u64,
    /// The parts stored so far, by part number.
    pub parts: Vec<UploadPart>,
    /// When the session expires unless touched again (epoch ms).
    pub expires_at: i64,
    /// Present once completed: the asset the upload produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<AssetInfo>,
}

/// How many parts an upload of `size` bytes has with `part_size` bytes per part.
pub fn upload_part_count(size: u64, part_size: u64) -> u32 {
    if part_size == 0 {
        return 0;
    }
    u32::try_from(size.div_ceil(part_size)).unwrap_or(u32::MAX)
}

/// The byte length of part `part_number` (from 1), or `None` outside the upload.
pub fn upload_part_len(size: u64, part_size: u64, part_number: u32) -> Option<u64> {
    if part_number == 0 || part_number > upload_part_count(size, part_size) {
        return None;
    }
    let start = u64::from(part_number - 1) * part_size;
    Some(part_size.min(size - start))
}

/// `PUT /v1/dev/faults` (dev mode only) as the server reads and answers it: [`SetFaults`]
/// (whose JSON is a subset, so either type can be sent) plus lost upload answers. Each PUT
/// replaces the caller's faults; the answer is what is still to come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevFaults {
    /// As [`SetFaults::document_put_errors`].
    #[serde(default)]
    pub document_put_errors: u32,
    /// How many of the caller's next upload requests (single-shot `POST /v1/assets/…`, part
    /// `PUT`, `complete`) do all their work and commit, then drop the connection without an
    /// answer, as a lost response would. 0 clears.
    #[serde(default)]
    pub upload_response_lost: u32,
    /// How many of the caller's next document writes (`PUT /v1/documents/…`) are stored,
    /// then lose their answer (the connection drops), as a lost response would. 0 clears.
    #[serde(default)]
    pub document_response_lost: u32,
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn plans_give_their_limits_and_add_ons_count_on_pro_only() {
        assert_eq!(Plan::Free.limit_bytes(0), 100_000_000);
        assert_eq!(Plan::Free.limit_bytes(3), 100_000_000);
        assert_eq!(Plan::Pro.limit_bytes(0), 5_000_000_000);
        assert_eq!(Plan::Pro.limit_bytes(1), 10_000_000_000);
        assert_eq!(Plan::Pro.limit_bytes(2), 15_000_000_000);
        // 5 GB × 2^32 does not fit a u64: the limit saturates instead of wrapping or panicking.
        assert_eq!(Plan::Pro.limit_bytes(u32::MAX), u64::MAX);
        assert!(Plan::Pro.storage_enabled());
        assert!(!Plan::Free.storage_enabled());
    }

    #[test]
    fn size_limits_are_the_documented_ones() {
        // README's Limits table: 1 MiB documents and items; 8 MiB upload parts, which must stay
        // at or above the 5 MiB minimum part of R2/S3 multipart uploads.
        assert_eq!(MAX_DOCUMENT_BYTES, 1_048_576);
        assert_eq!(MAX_ITEM_BYTES, 1_048_576);
        assert_eq!(UPLOAD_PART_SIZE, 8_388_608);
        const { assert!(UPLOAD_PART_SIZE >= 5 * 1024 * 1024) };
    }
}

#[cfg(test)]
mod upload_part_tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_exactly() {
        const P: u64 = UPLOAD_PART_SIZE;
        assert_eq!(upload_part_count(0, P), 0);
        assert_eq!(upload_part_count(1, P), 1);
        assert_eq!(upload_part_count(P, P), 1);
        assert_eq!(upload_part_count(P + 1, P), 2);
        assert_eq!(upload_part_len(2 * P + 5, P, 1), Some(P));
        assert_eq!(upload_part_len(2 * P + 5, P, 3), Some(5));
        assert_eq!(upload_part_len(2 * P + 5, P, 0), None);
        assert_eq!(upload_part_len(2 * P + 5, P, 4), None);
        assert_eq!(upload_part_len(0, P, 1), None);
        let total: u64 = (1..=upload_part_count(5 * P + 3, P))
            .map(|n| upload_part_len(5 * P + 3, P, n).unwrap())
            .sum();
        assert_eq!(total, 5 * P + 3);
    }

    #[test]
    fn sessions_serialize_in_camel_case_without_an_empty_completion() {
        let s = UploadSession {
            upload_id: "u".into(),
            bucket_id: "b".into(),
            size: 3,
            part_size: UPLOAD_PART_SIZE,
            parts: vec![UploadPart {
                part_number: 1,
                size: 3,
            }],
            expires_at: 7,
            completed: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"uploadId": "u", "bucketId": "b", "size": 3, "partSize": UPLOAD_PART_SIZE,
                "parts": [{"partNumber": 1, "size": 3}], "expiresAt": 7})
        );
        let f: DevFaults = serde_json::from_str(r#"{"uploadResponseLost": 2}"#).unwrap();
        assert_eq!((f.document_put_errors, f.upload_response_lost), (0, 2));
    }
}

/// `POST /v1/dev/explain/{pluginId}/{collection}` (dev mode only): the `detail` column of
/// `EXPLAIN QUERY PLAN` for the SQL core's planner makes of a collection query (the body is
/// the `query` op's options) for the caller, one entry per plan row, e.g.
/// `SEARCH _plugin_storage USING INDEX idx_… (user_id=? AND …)`. Lets tests check on any
/// backend that a declared index is built and used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPlanExplained {
    /// The plan rows' `detail`, in order.
    pub plan: Vec<String>,
}
