//! Health, account, usage, buckets, instances, dev-only routes, OpenAPI and fallbacks.

use crate::error::{AppError, AppResult};
use crate::http::extract::{Authed, JsonBody, PathParams, Storage};
use crate::store::{buckets, instances, plugins, quota, users};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use monodit_core::api::{
    BucketInfo, DeletedBucket, DeletedPlugin, DevFaults, InstanceInfo, InstanceRegistration, Me,
    NewUser, PluginInfo, SetPlan, Usage,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /v1/health` (no auth).
pub async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// `GET /v1/me`.
pub async fn me(State(st): State<Arc<AppState>>, Authed(user): Authed) -> AppResult<Json<Me>> {
    Ok(Json(st.db.read(move |tx| users::me(tx, &user.id)).await?))
}

/// `GET /v1/usage`: core's [`Usage`] plus `reservedBytes`, the bytes open upload
/// reservations hold (single-shot uploads streaming, resumable sessions not completed).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageAnswer {
    /// Settled usage, limit and per-bucket bytes.
    #[serde(flatten)]
    pub usage: Usage,
    /// Bytes reserved by uploads in flight; they count against the limit until they settle.
    pub reserved_bytes: u64,
}

/// `GET /v1/usage`.
pub async fn usage(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
) -> AppResult<Json<UsageAnswer>> {
    Ok(Json(
        st.db
            .read(move |tx| {
                let usage = users::usage(tx, &user.id)?;
                let (_, reserved_bytes) = quota::usage(tx, &user.id)?;
                Ok(UsageAnswer {
                    usage,
                    reserved_bytes,
                })
            })
            .await?,
    ))
}

/// `GET /v1/buckets`.
pub async fn list_buckets(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
) -> AppResult<Json<Vec<BucketInfo>>> {
    Ok(Json(
        st.db.read(move |tx| buckets::list(tx, &user.id)).await?,
    ))
}

/// `DELETE /v1/buckets/{backend}/{bucketId}`: rows first (one transaction), then objects.
/// If an object delete fails it is logged and left behind (an orphan costs space, but the
/// user's view and quota are already right); `deletedObjects` counts the ones removed.
pub async fn delete_bucket(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((backend, bucket_id)): PathParams<(String, String)>,
) -> AppResult<Json<DeletedBucket>> {
    let backend = instances::backend_from_path(&backend)?;
    crate::store::validate::bucket_id(&bucket_id)?;
    let deletion = st
        .db
        .write(move |tx| buckets::delete(tx, &user.id, backend, &bucket_id))
        .await?;
    let mut answer = deletion.answer;
    // Its own task, so a client that hangs up cannot leave objects half deleted.
    let st2 = st.clone();
    answer.deleted_objects = tokio::spawn(async move {
        crate::http::assets::delete_objects(&st2, &deletion.object_keys).await
    })
    .await
    .map_err(|e| AppError::internal("object deletion task", e))?;
    Ok(Json(answer))
}

/// `PUT /v1/instances/{instanceId}`.
pub async fn put_instance(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
    PathParams(instance_id): PathParams<String>,
    JsonBody(body): JsonBody<InstanceRegistration>,
) -> AppResult<Json<InstanceInfo>> {
    let info = st
        .db
        .write(move |tx| instances::register(tx, &user.id, &instance_id, body))
        .await?;
    // Indexes follow the new declarations in the background (`store::indexes`).
    st.indexer.wake();
    Ok(Json(info))
}

/// `GET /v1/instances`.
pub async fn list_instances(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
) -> AppResult<Json<Vec<InstanceInfo>>> {
    Ok(Json(
        st.db.read(move |tx| instances::list(tx, &user.id)).await?,
    ))
}

/// `DELETE /v1/instances/{instanceId}`.
pub async fn delete_instance(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
    PathParams(instance_id): PathParams<String>,
) -> AppResult<Json<Value>> {
    st.db
        .write(move |tx| instances::delete(tx, &user.id, &instance_id))
        .await?;
    st.indexer.wake();
    Ok(Json(json!({"deleted": true})))
}

/// `GET /v1/plugins` (any plan: a Free user can still see and delete what it stored).
pub async fn list_plugins(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
) -> AppResult<Json<Vec<PluginInfo>>> {
    Ok(Json(
        st.db.read(move |tx| plugins::list(tx, &user.id)).await?,
    ))
}

/// `DELETE /v1/plugins/{pluginId}` (any plan).
pub async fn delete_plugin(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
    PathParams(plugin_id): PathParams<String>,
) -> AppResult<Json<DeletedPlugin>> {
    let deleted = st
        .db
        .write(move |tx| plugins::delete(tx, &user.id, &plugin_id))
        .await?;
    st.indexer.wake();
    Ok(Json(deleted))
}

/// `POST /v1/dev/users` (dev mode): a fresh user per test.
pub async fn dev_new_user(
    State(st): State<Arc<AppState>>,
    JsonBody(body): JsonBody<SetPlan>,
) -> AppResult<Json<NewUser>> {
    Ok(Json(
        st.db
            .write(move |tx| {
                let user = users::create(tx, body.plan, body.addons, None)?;
                if body.limit_bytes.is_some() {
                    users::set_plan(tx, &user.user_id, body.plan, body.addons, body.limit_bytes)?;
                }
                Ok(user)
            })
            .await?,
    ))
}

/// `PUT /v1/dev/plan` (dev mode): change the caller's plan.
pub async fn dev_set_plan(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
    JsonBody(body): JsonBody<SetPlan>,
) -> AppResult<Json<Me>> {
    let me = st
        .db
        .write(move |tx| {
            users::set_plan(tx, &user.id, body.plan, body.addons, body.limit_bytes)?;
            users::me(tx, &user.id)
        })
        .await?;
    st.auth_cache.clear();
    Ok(Json(me))
}

/// `PUT /v1/dev/faults` (dev mode): the caller's next document writes answer 500 INTERNAL
/// or lose their answers, and its next upload requests lose theirs ([`DevFaults`]).
pub async fn dev_set_faults(
    State(st): State<Arc<AppState>>,
    Authed(user): Authed,
    JsonBody(body): JsonBody<DevFaults>,
) -> Json<DevFaults> {
    for (map, n) in [
        (&st.faults, body.document_put_errors),
        (&st.upload_faults, body.upload_response_lost),
        (&st.document_faults, body.document_response_lost),
    ] {
        let mut faults = map.lock().unwrap_or_else(|p| p.into_inner());
        if n == 0 {
            faults.remove(&user.id);
        } else {
            faults.insert(user.id.clone(), n);
        }
    }
    Json(body)
}

/// `GET /v1/openapi.json`: `server/openapi.yaml` as JSON.
pub async fn openapi(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(st.openapi.clone())
}

/// Unknown routes: a coded NOT_FOUND, never an empty 404. One exception: a `ctx.kv` key
/// path whose key is empty (`/v1/kv/{pluginId}/`) matches no route, but the honest answer is
/// INVALID_ARGUMENT (the SDK would otherwise read `ctx.kv.get("")` as an unset key).
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    if crate::http::kv::is_empty_key_path(uri.path()) {
        return AppError::invalid("a kv key is 1 to 512 bytes; this one is empty");
    }
    AppError::not_found("no such route")
}

/// Known path, wrong method: 405 with the coded body (`INVALID_ARGUMENT`); axum adds the
/// `Allow` header listing the path's methods.
pub async fn wrong_method(method: axum::http::Method) -> axum::response::Response {
    use axum::response::IntoResponse;
    let error = monodit_core::Error::new(
        monodit_core::ErrorCode::InvalidArgument,
        format!("{method} is not allowed on this path (see the Allow header)"),
    );
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, Json(error)).into_response()
}
