//! `POST /v1/collections/{pluginId}/{collection}/{op}` (seed 003).

use crate::error::AppResult;
use crate::http::extract::{JsonBody, PathParams, Storage};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

/// Runs one collection operation; the body is the op's arguments (`api::CollectionOp`).
pub async fn op(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, collection, op)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<Value>> {
    Ok(Json(
        st.db
            .write(move |tx| {
                crate::store::collections::run(tx, &user, &plugin_id, &collection, &op, body)
            })
            .await?,
    ))
}
