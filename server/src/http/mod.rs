//! The HTTP surface: the route table of `monodit_core::api`, CORS, limits, tracing, static
//! files in dev mode, and coded errors for everything that is not a route.

pub mod assets;
pub mod collections;
pub mod documents;
pub mod extract;
pub mod kv;
pub mod misc;
pub mod uploads;

use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

type Route = (&'static str, &'static str, MethodRouter<Arc<AppState>>);

/// Every route: (method, path, handler). The router and the OpenAPI test both read this
/// list, so the spec cannot silently drift from what is served. Dev routes are included only
/// in dev mode.
fn routes(dev: bool) -> Vec<Route> {
    let mut r: Vec<Route> = vec![
        ("GET", "/v1/health", get(misc::health)),
        ("GET", "/v1/openapi.json", get(misc::openapi)),
        ("GET", "/v1/me", get(misc::me)),
        ("GET", "/v1/usage", get(misc::usage)),
        ("GET", "/v1/buckets", get(misc::list_buckets)),
        (
            "DELETE",
            "/v1/buckets/{backend}/{bucketId}",
            delete(misc::delete_bucket),
        ),
        (
            "GET",
            "/v1/documents/{bucketId}",
            get(documents::get_document),
        ),
        (
            "PUT",
            "/v1/documents/{bucketId}",
            put(documents::put_document),
        ),
        (
            "GET",
            "/v1/documents/{bucketId}/meta",
            get(documents::get_meta),
        ),
        ("POST", "/v1/meta", post(documents::batch_meta)),
        ("POST", "/v1/assets/{bucketId}", post(assets::upload)),
        ("GET", "/v1/assets/{bucketId}", get(assets::list)),
        (
            "DELETE",
            "/v1/assets/{bucketId}/{objectKey}",
            delete(assets::delete),
        ),
        ("GET", "/v1/objects/{objectKey}", get(assets::download)),
        ("POST", "/v1/uploads", post(uploads::create)),
        ("GET", "/v1/uploads/{uploadId}", get(uploads::get)),
        ("DELETE", "/v1/uploads/{uploadId}", delete(uploads::abort)),
        (
            "PUT",
            "/v1/uploads/{uploadId}/parts/{partNumber}",
            put(uploads::put_part),
        ),
        (
            "POST",
            "/v1/uploads/{uploadId}/complete",
            post(uploads::complete),
        ),
        ("GET", "/v1/instances", get(misc::list_instances)),
        ("PUT", "/v1/instances/{instanceId}", put(misc::put_instance)),
        (
            "DELETE",
            "/v1/instances/{instanceId}",
            delete(misc::delete_instance),
        ),
        (
            "POST",
            "/v1/collections/{pluginId}/{collection}/{op}",
            post(collections::op),
        ),
        ("GET", "/v1/kv/{pluginId}", get(kv::list)),
        ("GET", "/v1/kv/{pluginId}/{key}", get(kv::get)),
        ("PUT", "/v1/kv/{pluginId}/{key}", put(kv::put)),
        ("DELETE", "/v1/kv/{pluginId}/{key}", delete(kv::delete)),
        ("GET", "/v1/plugins", get(misc::list_plugins)),
        (
            "DELETE",
            "/v1/plugins/{pluginId}",
            delete(misc::delete_plugin),
        ),
    ];
    if dev {
        r.push(("POST", "/v1/dev/users", post(misc::dev_new_user)));
        r.push(("PUT", "/v1/dev/plan", put(misc::dev_set_plan)));
        r.push(("PUT", "/v1/dev/faults", put(misc::dev_set_faults)));
    }
    r
}

/// (method, path) of every route served with `dev` on or off, in OpenAPI path syntax.
pub fn route_table(dev: bool) -> Vec<(String, String)> {
    routes(dev)
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect()
}

fn cors(origins: &[String], dev: bool) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") || (dev && origins.is_empty()) {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(600))
}

/// Builds the application router.
pub fn router(state: Arc<AppState>, static_dir: Option<&Path>) -> Router {
    let dev = state.dev;
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for (_, path, mr) in routes(dev) {
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(mr),
            None => mr,
        };
        by_path.insert(path, merged);
    }
    let mut app: Router<Arc<AppState>> = Router::new();
    for (path, mr) in by_path {
        app = app.route(path, mr.fallback(misc::wrong_method));
    }
    // Per-user API answers must never sit in a shared or browser HTTP cache (the SDK keeps
    // its own mirror and revalidates with ETags); signed downloads set their own policy.
    app = app.route_layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));
    app = match static_dir {
        // Dev demo: widget scripts and wasm are loaded by sandboxed iframes (origin "null")
        // and by cross-origin-isolated pages, so static files carry permissive CORS + CORP.
        Some(dir) => {
            let files = tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    HeaderName::from_static("cross-origin-resource-policy"),
                    HeaderValue::from_static("cross-origin"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ))
                .service(
                    ServeDir::new(dir)
                        .call_fallback_on_method_not_allowed(true)
                        .fallback(axum::routing::any(misc::not_found).with_state(())),
                );
            app.fallback_service(files)
        }
        None => app.fallback(misc::not_found),
    };
    let body_limit = state.body_limit;
    app.with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            crate::error::AppError::new(monodit_core::ErrorCode::Internal, "internal error")
                .into_response()
        }))
        .layer(TraceLayer::new_for_http())
}

/// Wraps the router with CORS (outermost, so errors and 404s carry CORS headers too).
pub fn with_cors(app: Router, origins: &[String], dev: bool) -> Router {
    app.layer(cors(origins, dev))
}
