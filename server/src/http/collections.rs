//! `POST /v1/collections/{pluginId}/{collection}/{op}` (seed 003).

use crate::error::AppResult;
use crate::http::extract::{JsonBody, PathParams, Storage};
use crate::store::collections;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

/// Runs one collection operation; the body is the op's arguments (`api::CollectionOp`, with
/// or without its `op` tag). Reads run on a reader connection, writes on the writer in one
/// transaction.
pub async fn op(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, collection, op)): PathParams<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<Value>> {
    let op = monodit_service::collections::parse_op(&op, body)?;
    let read_only = op.method().is_read();
    let secret = st.cursor_secret.clone();
    let run = move |tx: &rusqlite::Transaction<'_>| {
        collections::run(tx, &user, &plugin_id, &collection, op, &secret)
    };
    let answer = if read_only {
        st.db.read(run).await?
    } else {
        st.db.write(run).await?
    };
    Ok(Json(answer))
}

/// `POST /v1/dev/explain/{pluginId}/{collection}` (dev mode): the plan of a query, on a
/// reader connection.
pub async fn dev_explain(
    State(st): State<Arc<AppState>>,
    Storage(user): Storage,
    PathParams((plugin_id, collection)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<monodit_core::api::QueryPlanExplained>> {
    let opts = monodit_core::query::QueryOptions::from_json(&body)?;
    let secret = st.cursor_secret.clone();
    Ok(Json(
        st.db
            .read(move |tx| {
                collections::explain(tx, &user.id, &plugin_id, &collection, &opts, &secret)
            })
            .await?,
    ))
}
