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
use monodit_core::routes;
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
        ("GET", routes::HEALTH, get(misc::health)),
        ("GET", routes::OPENAPI, get(misc::openapi)),
        ("GET", routes::ME, get(misc::me)),
        ("GET", routes::USAGE, get(misc::usage)),
        ("GET", routes::BUCKETS, get(misc::list_buckets)),
        ("DELETE", routes::BUCKET, delete(misc::delete_bucket)),
        ("GET", routes::DOCUMENT, get(documents::get_document)),
        ("PUT", routes::DOCUMENT, put(documents::put_document)),
        ("GET", routes::DOCUMENT_META, get(documents::get_meta)),
        ("POST", routes::BATCH_META, post(documents::batch_meta)),
        ("POST", routes::ASSETS, post(assets::upload)),
        ("GET", routes::ASSETS, get(assets::list)),
        ("DELETE", routes::ASSET, delete(assets::delete)),
        ("GET", routes::OBJECT, get(assets::download)),
        ("POST", routes::UPLOADS, post(uploads::create)),
        ("GET", routes::UPLOAD, get(uploads::get)),
        ("DELETE", routes::UPLOAD, delete(uploads::abort)),
        ("PUT", routes::UPLOAD_PART, put(uploads::put_part)),
        ("POST", routes::UPLOAD_COMPLETE, post(uploads::complete)),
        ("GET", routes::INSTANCES, get(misc::list_instances)),
        ("PUT", routes::INSTANCE, put(misc::put_instance)),
        ("DELETE", routes::INSTANCE, delete(misc::delete_instance)),
        ("POST", routes::COLLECTION_OP, post(collections::op)),
        ("GET", routes::KV, get(kv::list)),
        ("GET", routes::KV_KEY, get(kv::get)),
        ("PUT", routes::KV_KEY, put(kv::put)),
        ("DELETE", routes::KV_KEY, delete(kv::delete)),
        ("GET", routes::PLUGINS, get(misc::list_plugins)),
        ("DELETE", routes::PLUGIN, delete(misc::delete_plugin)),
    ];
    if dev {
        r.push(("POST", routes::DEV_USERS, post(misc::dev_new_user)));
        r.push(("PUT", routes::DEV_PLAN, put(misc::dev_set_plan)));
        r.push(("PUT", routes::DEV_FAULTS, put(misc::dev_set_faults)));
        r.push(("POST", routes::DEV_EXPLAIN, post(collections::dev_explain)));
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

#[cfg(test)]
mod tests {
    use super::route_table;
    use monodit_core::routes;

    /// The SDK's client builds its paths with core's builders: each one (with ids holding `/`,
    /// `?`, `%` and non-ASCII) must land on a route this router serves with that method, and
    /// every served route must have a builder, so neither side can add or rename a route alone.
    #[test]
    fn every_built_path_is_served_and_every_route_is_built() {
        let served = route_table(true);
        let mut want: Vec<(String, String)> = routes::TABLE
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let mut got = served.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "the router serves exactly core's route table");
        for (method, path) in routes::samples() {
            assert!(
                served
                    .iter()
                    .any(|(m, p)| m == method && routes::matches(p, &path)),
                "{method} {path} matches no served route"
            );
        }
        for (method, pattern) in &served {
            assert!(
                routes::samples()
                    .iter()
                    .any(|(m, p)| m == method && routes::matches(pattern, p)),
                "{method} {pattern} has no builder in core's routes"
            );
        }
    }
}
