//! `ctx.kv` routes (seed 003): `GET /v1/kv/{pluginId}?prefix=`, and `GET|PUT|DELETE
//! /v1/kv/{pluginId}/{key}`. Keys travel as one percent-encoded path segment
//! (`settings%3Atheme`, a raw `:` works too); axum decodes it, invalid UTF-8 is
//! INVALID_ARGUMENT. Same gate as collections: bearer token, then the Pro plan
//! (PLAN_REQUIRED on Free, reads included).

use crate::error::{AppError, AppResult};
use crate::http::extract::{JsonBody, PathParams, QueryParams, Storage};
use crate::store::kv;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use monodit_core::kv::{KvEntry, KvList, PutKv};
use monodit_core::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Query of the list route.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Keys must start with this (exactly: no wildcards); empty lists every key.
    #[serde(default)]
    pub prefix: String,
    /// Keyset paging: only keys after this one (the last key of the previous page).
    #[serde(default)]
    pub after: String,
}

/// `GET /v1/kv/{pluginId}?prefix=&after=`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams(plugin_id): PathParams<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<Json<KvList>> {
    Ok(Json(
        st.db
            .read(move |tx| kv::list(tx, &user.id, &plugin_id, &q.prefix, &q.after))
            .await?,
    ))
}

/// Query of the key read route.
#[derive(Debug, Deserialize)]
pub struct GetQuery {
    /// `empty`: an unset key answers 204 (no body) instead of 404 NOT_FOUND, so a browser
    /// client reading a key not yet written does not log a failed request (as documents do).
    #[serde(default)]
    pub missing: Option<String>,
}

/// `GET /v1/kv/{pluginId}/{key}?missing=empty`.
pub async fn get(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, key)): PathParams<(String, String)>,
    QueryParams(q): QueryParams<GetQuery>,
) -> AppResult<Response> {
    let empty = match q.missing.as_deref() {
        None => false,
        Some("empty") => true,
        Some(_) => return Err(AppError::invalid("missing must be \"empty\" when given")),
    };
    let found = st
        .db
        .read(move |tx| kv::get(tx, &user.id, &plugin_id, &key))
        .await;
    match found {
        Ok(entry) => Ok(Json::<KvEntry>(entry).into_response()),
        Err(e) if empty && e.code() == ErrorCode::NotFound => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => Err(e),
    }
}

/// `PUT /v1/kv/{pluginId}/{key}`: body [`PutKv`], answers the stored entry.
pub async fn put(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, key)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<PutKv>,
) -> AppResult<Json<KvEntry>> {
    // Input errors answer before the writer is taken; the store checks again (cheap).
    kv::check_plugin_id(&plugin_id)?;
    kv::check_key(&key)?;
    let text = kv::encode_value(&body.value)?;
    Ok(Json(
        st.db
            .write(move |tx| kv::put(tx, &user, &plugin_id, &key, body.value, &text))
            .await?,
    ))
}

/// `DELETE /v1/kv/{pluginId}/{key}` → `{deleted: bool}`.
pub async fn delete(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, key)): PathParams<(String, String)>,
) -> AppResult<Json<Value>> {
    kv::check_plugin_id(&plugin_id)?;
    kv::check_key(&key)?;
    let deleted = st
        .db
        .write(move |tx| kv::delete(tx, &user, &plugin_id, &key))
        .await?;
    Ok(Json(json!({ "deleted": deleted })))
}

/// Whether `path` is a key route with an empty key (`/v1/kv/{pluginId}/`), which no route
/// matches (see [`crate::http::misc::not_found`]).
pub fn is_empty_key_path(path: &str) -> bool {
    path.strip_prefix("/v1/kv/")
        .and_then(|rest| rest.strip_suffix('/'))
        .is_some_and(|plugin| !plugin.is_empty() && !plugin.contains('/'))
}
