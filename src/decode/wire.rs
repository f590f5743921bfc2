//! [`FromJson`] for core's wire types that the host reads (backend answers, and the parts
//! of them kept in IndexedDB records and cross-tab messages). Field names and optionality
//! follow each type's serde attributes in `monodit_core`; the server still uses those.

use super::read::{one_of, FromJson, Obj, Res};
use monodit_core::api::{
    AssetBucketMeta, AssetInfo, AssetList, BatchMetaResponse, BucketInfo, BucketUsage,
    ConnectedInstance, Contract, DeletedBucket, DevFaults, Document, DocumentMeta, InstanceInfo,
    InstanceKind, Me, NewUser, Plan, SetFaults, UploadPart, UploadSession, Usage,
};
use monodit_core::buckets::Backend;
use monodit_core::kv::{KvEntry, KvList};
use monodit_core::outbox::{Condition, Settled};
use monodit_core::{Error, ErrorCode};
use serde_json::Value;

impl FromJson for ErrorCode {
    fn from_json(v: Value) -> Res<Self> {
        let s = String::from_json(v)?;
        ErrorCode::parse(&s).ok_or_else(|| format!("unknown error code `{s}`"))
    }
}

impl FromJson for Error {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(Error {
            code: o.req("code")?,
            message: o.req("message")?,
            detail: o.opt("detail")?,
        })
    }
}

impl FromJson for Backend {
    fn from_json(v: Value) -> Res<Self> {
        let s = String::from_json(v)?;
        Backend::parse(&s).ok_or_else(|| format!("unknown backend `{s}`"))
    }
}

impl FromJson for Plan {
    fn from_json(v: Value) -> Res<Self> {
        Ok([Plan::Free, Plan::Pro][one_of(v, &["free", "pro"])?])
    }
}

impl FromJson for InstanceKind {
    fn from_json(v: Value) -> Res<Self> {
        Ok([InstanceKind::Widget, InstanceKind::Theme][one_of(v, &["widget", "theme"])?])
    }
}

impl FromJson for Condition {
    fn from_json(v: Value) -> Res<Self> {
        Ok([Condition::Plain, Condition::IfVersion][one_of(v, &["plain", "ifVersion"])?])
    }
}

impl FromJson for Settled {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(Settled {
            seq: o.req("seq")?,
            version: o.req("version")?,
        })
    }
}

/// A contract's fields, from its own object or flattened into another (`BucketInfo`).
fn contract(o: &mut Obj) -> Res<Contract> {
    Ok(Contract {
        backend: o.req("backend")?,
        schema_id: o.req("schemaId")?,
        schema_version: o.req("schemaVersion")?,
    })
}

impl FromJson for Contract {
    fn from_json(v: Value) -> Res<Self> {
        contract(&mut Obj::new(v)?)
    }
}

impl FromJson for Me {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(Me {
            user_id: o.req("userId")?,
            plan: o.req("plan")?,
            addons: o.req("addons")?,
            used_bytes: o.req("usedBytes")?,
            limit_bytes: o.req("limitBytes")?,
        })
    }
}

impl FromJson for NewUser {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(NewUser {
            user_id: o.req("userId")?,
            token: o.req("token")?,
        })
    }
}

impl FromJson for SetFaults {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(SetFaults {
            document_put_errors: o.or_default("documentPutErrors")?,
        })
    }
}

impl FromJson for DevFaults {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(DevFaults {
            document_put_errors: o.or_default("documentPutErrors")?,
            upload_response_lost: o.or_default("uploadResponseLost")?,
            document_response_lost: o.or_default("documentResponseLost")?,
        })
    }
}

impl FromJson for BucketUsage {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(BucketUsage {
            backend: o.req("backend")?,
            bucket_id: o.req("bucketId")?,
            bytes: o.req("bytes")?,
        })
    }
}

impl FromJson for Usage {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(Usage {
            plan: o.req("plan")?,
            used_bytes: o.req("usedBytes")?,
            limit_bytes: o.req("limitBytes")?,
            collection_bytes: o.req("collectionBytes")?,
            kv_bytes: o.or_default("kvBytes")?,
            buckets: o.req("buckets")?,
        })
    }
}

impl FromJson for ConnectedInstance {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(ConnectedInstance {
            instance_id: o.req("instanceId")?,
            binding_key: o.req("bindingKey")?,
            isolated: o.req("isolated")?,
        })
    }
}

impl FromJson for BucketInfo {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(BucketInfo {
            contract: contract(&mut o)?,
            bucket_id: o.req("bucketId")?,
            bytes: o.req("bytes")?,
            version: o.req("version")?,
            created_at: o.req("createdAt")?,
            instances: o.req("instances")?,
        })
    }
}

impl FromJson for DeletedBucket {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(DeletedBucket {
            refunded_bytes: o.req("refundedBytes")?,
            deleted_objects: o.req("deletedObjects")?,
            disconnected_instances: o.req("disconnectedInstances")?,
        })
    }
}

impl FromJson for InstanceInfo {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(InstanceInfo {
            instance_id: o.req("instanceId")?,
            kind: o.req("kind")?,
            widget_id: o.req("widgetId")?,
            manifest: o.req("manifest")?,
            config: o.req("config")?,
            buckets: o.req("buckets")?,
            source: o.opt("source")?,
        })
    }
}

/// A document's metadata fields, from its own object or flattened into `Document`.
fn document_meta(o: &mut Obj) -> Res<DocumentMeta> {
    Ok(DocumentMeta {
        bucket_id: o.req("bucketId")?,
        version: o.req("version")?,
        size: o.req("size")?,
        updated_at: o.req("updatedAt")?,
    })
}

impl FromJson for DocumentMeta {
    fn from_json(v: Value) -> Res<Self> {
        document_meta(&mut Obj::new(v)?)
    }
}

impl FromJson for Document {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(Document {
            meta: document_meta(&mut o)?,
            value: o.req("value")?,
            contract: o.req("contract")?,
        })
    }
}

impl FromJson for AssetBucketMeta {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(AssetBucketMeta {
            bucket_id: o.req("bucketId")?,
            version: o.req("version")?,
            count: o.req("count")?,
            bytes: o.req("bytes")?,
        })
    }
}

impl FromJson for BatchMetaResponse {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(BatchMetaResponse {
            documents: o.req("documents")?,
            assets: o.req("assets")?,
        })
    }
}

impl FromJson for AssetInfo {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(AssetInfo {
            object_key: o.req("objectKey")?,
            name: o.req("name")?,
            size: o.req("size")?,
            content_type: o.req("contentType")?,
            uploaded_at: o.req("uploadedAt")?,
            url: o.req("url")?,
            url_expires_at: o.opt("urlExpiresAt")?,
        })
    }
}

impl FromJson for AssetList {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(AssetList {
            bucket_id: o.req("bucketId")?,
            version: o.req("version")?,
            assets: o.req("assets")?,
        })
    }
}

impl FromJson for KvEntry {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(KvEntry {
            key: o.req("key")?,
            value: o.req("value")?,
        })
    }
}

impl FromJson for KvList {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(KvList {
            entries: o.req("entries")?,
            has_more: o.req("hasMore")?,
        })
    }
}

impl FromJson for UploadPart {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(UploadPart {
            part_number: o.req("partNumber")?,
            size: o.req("size")?,
        })
    }
}

impl FromJson for UploadSession {
    fn from_json(v: Value) -> Res<Self> {
        let mut o = Obj::new(v)?;
        Ok(UploadSession {
            upload_id: o.req("uploadId")?,
            bucket_id: o.req("bucketId")?,
            size: o.req("size")?,
            part_size: o.req("partSize")?,
            parts: o.req("parts")?,
            expires_at: o.req("expiresAt")?,
            completed: o.opt("completed")?,
        })
    }
}
