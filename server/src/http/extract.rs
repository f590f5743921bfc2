//! Request extractors that turn every malformed input into a coded error (never axum's plain
//! text rejections), and bearer-token authentication.

use crate::error::AppError;
use crate::store::users::{self, UserRow};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use monodit_core::ErrorCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Path parameters with coded rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct PathParams<T>(pub T);

/// Query parameters with coded rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct QueryParams<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::invalid(format!("bad path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::invalid(format!("bad query string: {}", r.body_text()))
    }
}

/// A JSON body, accepted with or without a JSON `Content-Type` (the SDK always sends one, and
/// being lenient costs nothing). Oversized → PAYLOAD_TOO_LARGE; malformed or wrong types →
/// INVALID_ARGUMENT naming what serde found.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r: BytesRejection| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(ErrorCode::PayloadTooLarge, "request body too large")
                } else if is_body_timeout(&r) {
                    AppError::new(ErrorCode::Timeout, "the request body stopped arriving")
                } else {
                    AppError::invalid(format!("could not read the body: {}", r.body_text()))
                }
            })?;
        // Every body is a JSON object; serde would also read a struct from an array of its
        // fields (`[]` as an empty request), which no client means and the spec forbids.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(AppError::invalid("the body must be a JSON object"));
        }
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(JsonBody(v)),
            Err(e) if e.to_string().starts_with("invalid type: floating point") => {
                // `2.0` is an integer to JSON (and JSON Schema), not to serde: read integral
                // floats as integers. Only bodies refused otherwise take this path, so a value
                // a client stores is never rewritten when its envelope was well formed.
                let mut value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| AppError::invalid(format!("invalid JSON body: {e}")))?;
                integral_floats_to_integers(&mut value);
                serde_json::from_value(value)
                    .map(JsonBody)
                    .map_err(|e| AppError::invalid(format!("invalid JSON body: {e}")))
            }
            Err(e) => Err(AppError::invalid(format!("invalid JSON body: {e}"))),
        }
    }
}

/// Rewrites numbers such as `557.0` as `557` (within ±2^53, where a float is exact).
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                // In range and integral, so the cast is exact.
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// Whether a body read failed because the client stopped sending (the body timeout of
/// [`crate::serve`]).
fn is_body_timeout(r: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() || e.is::<crate::min_rate::TooSlow>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The authenticated user (any plan).
pub struct Authed(pub UserRow);

/// The authenticated user on a plan with storage (Free → PLAN_REQUIRED).
pub struct Storage(pub UserRow);

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let unauth = |m: &str| AppError::new(ErrorCode::Unauthenticated, m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauth("missing Authorization: Bearer <token>"))?;
        let value = value
            .to_str()
            .map_err(|_| unauth("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 512)
            .ok_or_else(|| unauth("Authorization must be \"Bearer <token>\""))?
            .to_string();
        let hash = users::hash_token(&token);
        if let Some(user) = state.auth_cache.get(&hash) {
            return Ok(Authed(user));
        }
        let h = hash.clone();
        let user = state
            .db
            .read(move |tx| users::by_token_hash(tx, &h))
            .await?
            .ok_or_else(|| unauth("unknown token"))?;
        state.auth_cache.put(hash, user.clone());
        Ok(Authed(user))
    }
}

impl FromRequestParts<Arc<AppState>> for Storage {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Authed(user) = Authed::from_request_parts(parts, state).await?;
        user.require_storage()?;
        Ok(Storage(user))
    }
}

/// Authenticated users by token hash, so a request costs one database round trip, not two.
/// Exact, not a TTL cache: users are never deleted and this process is the only one that
/// changes plans (it clears the cache when it does); other processes only add users.
#[derive(Default)]
pub struct AuthCache {
    map: std::sync::Mutex<std::collections::HashMap<String, UserRow>>,
}

/// Entries kept before the cache starts over (bounds memory under token spraying; unknown
/// tokens are never cached).
const AUTH_CACHE_MAX: usize = 10_000;

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, UserRow>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached user for a token hash.
    pub fn get(&self, token_hash: &str) -> Option<UserRow> {
        self.lock().get(token_hash).cloned()
    }

    /// Remembers a user.
    pub fn put(&self, token_hash: String, user: UserRow) {
        let mut map = self.lock();
        if map.len() >= AUTH_CACHE_MAX {
            map.clear();
        }
        map.insert(token_hash, user);
    }

    /// Forgets everything (after a plan change).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
