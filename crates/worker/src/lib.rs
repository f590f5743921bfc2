//! `monodit-worker`: the monodit HTTP API on Cloudflare Workers, with D1 for rows and R2 for
//! objects. It is the second adapter of `monodit-service` (the native `monodit-server` is the
//! first): the decisions come from there, the SQL is the native server's, and the schema is
//! the shared numbered migrations in `server/migrations/`.
//!
//! It serves every route of `server/openapi.yaml` (see `README.md`, "Deploy on Cloudflare"):
//! health, account and usage, documents and batch meta, buckets, single-shot assets and signed
//! downloads on R2, resumable uploads on R2 multipart, instances, plugins, collections, `ctx.kv`,
//! the OpenAPI description, and the dev routes (only when the `MONODIT_DEV` variable is `"1"`).
//! CORS follows `MONODIT_ALLOW_ORIGIN`; a cron trigger runs the sweep ([`sweep`]).
//!
//! The crate is empty on other targets, so the native workspace builds and tests it for free.
#![cfg(target_arch = "wasm32")]
#![deny(missing_docs)]

pub mod assets;
pub mod buckets;
pub mod collections;
pub mod cors;
pub mod db;
pub mod documents;
pub mod downloads;
pub mod env;
pub mod http;
pub mod indexes;
pub mod instances;
pub mod kv;
pub mod plugins;
pub mod sweep;
pub mod uploads;
pub mod users;

use crate::db::Db;
use crate::http::{error_response, json, Answer};
use crate::users::Fault;
use monodit_core::api::{
    BatchMetaRequest, DevFaults, InstanceRegistration, NewUpload, PutDocument, SetPlan,
};
use monodit_core::kv::PutKv;
use monodit_core::manifest::Manifest;
use monodit_core::Error;
use worker::{event, Context, Method, Request, Response, ScheduleContext};

/// The Worker's entry point: every request gets an answer, failures a coded one.
#[event(fetch)]
pub async fn fetch(mut req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    let cors = match cors::Cors::from_env(&env, dev_mode(&env)) {
        Ok(c) => c,
        Err(e) => return Ok(error_response(&e)),
    };
    if let Some(preflight) = cors.preflight(&req) {
        return Ok(preflight);
    }
    let origin = http::header(&req, "origin");
    let answer = match route(&mut req, &env).await {
        Ok(r) => r,
        Err(e) => {
            // Refused before its body was read: read it first (see `http::discard_body`).
            http::discard_body(&req).await;
            error_response(&e)
        }
    };
    Ok(cors.decorate(origin.as_deref(), http::no_store(answer)))
}

/// The cron trigger (`[triggers]` in `wrangler.toml`): one sweep ([`sweep::run`]). Failures
/// are logged; the next trigger sweeps again.
#[event(scheduled)]
pub async fn scheduled(_event: worker::ScheduledEvent, env: worker::Env, _ctx: ScheduleContext) {
    let outcome = async {
        let db = database(&env)?;
        let objects = r2(&env)?;
        let wenv = env::WorkerEnv::from_bindings(&env)?;
        sweep::run(&db, &objects, &wenv).await
    }
    .await;
    match outcome {
        Ok(report) if report != sweep::SweepReport::default() => {
            worker::console_log!("sweep removed unreferenced data: {report:?}")
        }
        Ok(_) => {}
        Err(e) => worker::console_error!("sweep failed: {}", e.message),
    }
}

/// Whether the dev routes are on: the `MONODIT_DEV` variable is `"1"` (off by default).
fn dev_mode(env: &worker::Env) -> bool {
    env.var("MONODIT_DEV")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false)
}

fn database(env: &worker::Env) -> Result<Db, Error> {
    env.d1("DB")
        .map(Db)
        .map_err(|e| db::internal("the D1 binding DB", e))
}

fn r2(env: &worker::Env) -> Result<worker::Bucket, Error> {
    env.bucket("OBJECTS")
        .map_err(|e| db::internal("the R2 binding OBJECTS", e))
}

/// Known path, wrong method: 405 with the coded body (`INVALID_ARGUMENT`) and `Allow`.
fn wrong_method(method: &Method, allow: &str) -> Answer {
    let r = error_response(&Error::invalid(format!(
        "{method} is not allowed on this path (see the Allow header)"
    )))
    .with_status(405);
    http::with_header(r, "allow", allow)
}

/// Authenticates the caller (any plan).
async fn authed(req: &Request, db: &Db) -> Result<users::User, Error> {
    users::authenticate(db, &http::bearer(req)?).await
}

/// Authenticates the caller on a plan with storage (Free → PLAN_REQUIRED).
async fn storage(req: &Request, db: &Db) -> Result<users::User, Error> {
    let user = authed(req, db).await?;
    user.require_storage()?;
    Ok(user)
}

async fn route(req: &mut Request, env: &worker::Env) -> Answer {
    let path = req.path();
    let method = req.method();
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            urlencoding_decode(s).ok_or_else(|| Error::invalid("bad path parameter: not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["v1", "health"] => match method {
            Method::Get => json(&serde_json::json!({"ok": true})),
            m => wrong_method(&m, "GET"),
        },
        ["v1", "dev", "users"] if dev_mode(env) => match method {
            Method::Post => {
                let body: SetPlan = http::json_body(req).await?;
                let db = database(env)?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                json(&users::create(&db, &wenv, &body).await?)
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "dev", "plan"] if dev_mode(env) => match method {
            Method::Put => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                let body: SetPlan = http::json_body(req).await?;
                json(&users::set_plan(&db, &user.id, &body).await?)
            }
            m => wrong_method(&m, "PUT"),
        },
        ["v1", "dev", "faults"] if dev_mode(env) => match method {
            Method::Put => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                let body: DevFaults = http::json_body(req).await?;
                json(&users::set_faults(&db, &user.id, &body).await?)
            }
            m => wrong_method(&m, "PUT"),
        },
        ["v1", "dev", "explain", plugin, collection] if dev_mode(env) => match method {
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let body: serde_json::Value = http::json_body(req).await?;
                let opts = monodit_core::query::QueryOptions::from_json(&body)?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let secret =
                    monodit_service::Secrets::secret(&wenv, monodit_service::Secret::Cursor);
                json(&collections::explain(&db, &user, plugin, collection, &opts, secret).await?)
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "openapi.json"] => match method {
            Method::Get => json(&openapi_json()),
            m => wrong_method(&m, "GET"),
        },
        ["v1", "me"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                json(&users::me(&db, &user.id).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "usage"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                json(&users::usage(&db, &user.id).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "meta"] => match method {
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let body: BatchMetaRequest = http::json_body(req).await?;
                json(&documents::batch_meta(&db, &user.id, body).await?)
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "documents", bucket] => match method {
            Method::Get => get_document(req, env, bucket).await,
            Method::Put => put_document(req, env, bucket).await,
            m => wrong_method(&m, "GET, PUT"),
        },
        ["v1", "documents", bucket, "meta"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let meta = documents::get_meta(&db, &user.id, bucket).await?;
                http::with_header(json(&meta)?, "etag", &http::etag(meta.version))
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "assets", bucket] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let base = assets::origin(req)?;
                json(&assets::list(&db, &wenv, &base, &user.id, bucket).await?)
            }
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let objects = r2(env)?;
                let r = assets::upload(req, &db, &objects, &wenv, &user, bucket).await?;
                upload_answer(env, &db, &user.id, r).await
            }
            m => wrong_method(&m, "GET, POST"),
        },
        ["v1", "assets", bucket, key] => match method {
            Method::Delete => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let objects = r2(env)?;
                assets::delete(&db, &objects, &wenv, &user.id, bucket, key).await?;
                json(&serde_json::json!({"deleted": true}))
            }
            m => wrong_method(&m, "DELETE"),
        },
        ["v1", "objects", key] => match method {
            Method::Get => {
                let db = database(env)?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let objects = r2(env)?;
                downloads::download(req, &db, &objects, &wenv, key).await
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "uploads"] => match method {
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let body: NewUpload = http::json_body(req).await?;
                let (wenv, objects) = (env::WorkerEnv::from_bindings(env)?, r2(env)?);
                let base = assets::origin(req)?;
                json(&uploads::create(&db, &objects, &wenv, &base, &user, body).await?)
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "uploads", id] => {
            let db = database(env)?;
            match method {
                Method::Get => {
                    let user = storage(req, &db).await?;
                    let wenv = env::WorkerEnv::from_bindings(env)?;
                    let base = assets::origin(req)?;
                    json(&uploads::show(&db, &wenv, &base, &user.id, id).await?)
                }
                Method::Delete => {
                    let user = storage(req, &db).await?;
                    let (wenv, objects) = (env::WorkerEnv::from_bindings(env)?, r2(env)?);
                    uploads::abort(&db, &objects, &wenv, &user.id, id).await?;
                    json(&serde_json::json!({"deleted": true}))
                }
                m => wrong_method(&m, "GET, DELETE"),
            }
        }
        ["v1", "uploads", id, "parts", n] => match method {
            Method::Put => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let (wenv, objects) = (env::WorkerEnv::from_bindings(env)?, r2(env)?);
                let part = uploads::put_part(req, &db, &objects, &wenv, &user.id, id, n).await?;
                upload_answer(env, &db, &user.id, json(&part)?).await
            }
            m => wrong_method(&m, "PUT"),
        },
        ["v1", "uploads", id, "complete"] => match method {
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let (wenv, objects) = (env::WorkerEnv::from_bindings(env)?, r2(env)?);
                let base = assets::origin(req)?;
                let row = uploads::complete(&db, &objects, &wenv, &user, id).await?;
                let r = json(&assets::info(&wenv, &base, row))?;
                upload_answer(env, &db, &user.id, r).await
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "kv", plugin] if !plugin.is_empty() => match method {
            Method::Get => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let prefix = http::query_once(req, "prefix")?.unwrap_or_default();
                let after = http::query_once(req, "after")?.unwrap_or_default();
                json(&kv::list(&db, &user.id, plugin, &prefix, &after).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "kv", plugin, key] if !plugin.is_empty() => {
            if key.is_empty() {
                // No route natively (`/v1/kv/{pluginId}/`), but the answer names the problem.
                return Err(kv::check_key(key)
                    .err()
                    .unwrap_or_else(|| http::not_found("no such route")));
            }
            let db = database(env)?;
            match method {
                Method::Get => get_kv(req, &db, plugin, key).await,
                Method::Put => {
                    let user = storage(req, &db).await?;
                    kv::check_plugin_id(plugin)?;
                    kv::check_key(key)?;
                    let body: PutKv = http::json_body(req).await?;
                    let wenv = env::WorkerEnv::from_bindings(env)?;
                    let now = monodit_service::Clock::now_ms(&wenv) as i64;
                    json(&kv::put(&db, &user, plugin, key, body.value, now).await?)
                }
                Method::Delete => {
                    let user = storage(req, &db).await?;
                    let deleted = kv::delete(&db, &user, plugin, key).await?;
                    json(&serde_json::json!({ "deleted": deleted }))
                }
                m => wrong_method(&m, "GET, PUT, DELETE"),
            }
        }
        ["v1", "instances"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                json(&instances::list(&db, &user.id).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "instances", id] => match method {
            Method::Put => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                let body: InstanceRegistration = http::json_body(req).await?;
                let now = js_sys::Date::now() as i64;
                let info = instances::register(&db, now, &user.id, id, body).await?;
                // The declared indexes, once the declarations are committed (`indexes`).
                if user.plan.storage_enabled() {
                    if let Ok(manifest) = Manifest::parse(&info.manifest) {
                        indexes::build_declared(&db, &manifest).await;
                    }
                }
                json(&info)
            }
            Method::Delete => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                instances::delete(&db, &user.id, id).await?;
                json(&serde_json::json!({"deleted": true}))
            }
            m => wrong_method(&m, "PUT, DELETE"),
        },
        ["v1", "plugins"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                json(&plugins::list(&db, &user.id).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "plugins", id] => match method {
            Method::Delete => {
                let db = database(env)?;
                let user = authed(req, &db).await?;
                json(&plugins::delete(&db, &user.id, id).await?)
            }
            m => wrong_method(&m, "DELETE"),
        },
        ["v1", "collections", plugin, collection, op] => match method {
            Method::Post => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let body: serde_json::Value = http::json_body(req).await?;
                let op = monodit_service::collections::parse_op(op, body)?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                let secret =
                    monodit_service::Secrets::secret(&wenv, monodit_service::Secret::Cursor);
                json(&collections::run(&db, &user, plugin, collection, op, secret).await?)
            }
            m => wrong_method(&m, "POST"),
        },
        ["v1", "buckets"] => match method {
            Method::Get => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                json(&buckets::list(&db, &user.id).await?)
            }
            m => wrong_method(&m, "GET"),
        },
        ["v1", "buckets", backend, bucket] => match method {
            Method::Delete => {
                let db = database(env)?;
                let user = storage(req, &db).await?;
                let backend = buckets::backend_from_path(backend)?;
                let objects = r2(env)?;
                let wenv = env::WorkerEnv::from_bindings(env)?;
                json(&buckets::delete(&db, &objects, &wenv, &user.id, backend, bucket).await?)
            }
            m => wrong_method(&m, "DELETE"),
        },
        _ => Err(http::not_found("no such route")),
    }
}

/// An upload's answer, unless the caller's next upload answer is to be lost (dev fault
/// `uploadResponseLost`: the work is done and committed, the client hears nothing).
async fn upload_answer(env: &worker::Env, db: &Db, user_id: &str, answer: Response) -> Answer {
    if dev_mode(env) && users::take_fault(db, user_id, Fault::UploadResponseLost).await? {
        return http::lost_answer();
    }
    Ok(answer)
}

/// `GET /v1/kv/{pluginId}/{key}?missing=empty`: an unset key answers 204 with `empty`.
async fn get_kv(req: &Request, db: &Db, plugin: &str, key: &str) -> Answer {
    let user = storage(req, db).await?;
    let empty = match http::query_once(req, "missing")?.as_deref() {
        None => false,
        Some("empty") => true,
        Some(_) => return Err(Error::invalid("missing must be \"empty\" when given")),
    };
    match kv::get(db, &user.id, plugin, key).await {
        Ok(entry) => json(&entry),
        Err(e) if empty && e.code == monodit_core::ErrorCode::NotFound => Response::empty()
            .map(|r| r.with_status(204))
            .map_err(http::runtime),
        Err(e) => Err(e),
    }
}

async fn get_document(req: &mut Request, env: &worker::Env, bucket: &str) -> Answer {
    let missing = http::query_param(req, "missing")?;
    if missing.as_deref().is_some_and(|m| m != "empty") {
        return Err(Error::invalid("missing must be \"empty\" when given"));
    }
    let db = database(env)?;
    let user = storage(req, &db).await?;
    let doc = match documents::get(&db, &user.id, bucket).await {
        Err(e) if e.code == monodit_core::ErrorCode::NotFound && missing.is_some() => {
            return Response::empty()
                .map(|r| r.with_status(204))
                .map_err(http::runtime);
        }
        other => other?,
    };
    let tag = http::etag(doc.meta.version);
    if http::none_match_hits(req, doc.meta.version) {
        let r = Response::empty().map_err(http::runtime)?.with_status(304);
        return http::with_header(r, "etag", &tag);
    }
    http::with_header(json(&doc)?, "etag", &tag)
}

async fn put_document(req: &mut Request, env: &worker::Env, bucket: &str) -> Answer {
    let if_match = match http::header(req, "if-match") {
        None => None,
        Some(v) => Some(
            http::parse_tag(&v)
                .ok_or_else(|| Error::invalid("If-Match must be a version tag such as \"3\""))?,
        ),
    };
    let db = database(env)?;
    let user = storage(req, &db).await?;
    let body: PutDocument = http::json_body(req).await?;
    if dev_mode(env) && users::take_fault(&db, &user.id, Fault::DocumentPutError).await? {
        return Err(Error::new(
            monodit_core::ErrorCode::Internal,
            "internal error (injected by PUT /v1/dev/faults)",
        ));
    }
    let wenv = env::WorkerEnv::from_bindings(env)?;
    let meta = documents::put(&db, &wenv, &user, bucket, body, if_match).await?;
    if dev_mode(env) && users::take_fault(&db, &user.id, Fault::DocumentResponseLost).await? {
        // Stored, but the client never hears so (dev fault `documentResponseLost`).
        return http::lost_answer();
    }
    http::with_header(json(&meta)?, "etag", &http::etag(meta.version))
}

/// The API's description, `server/openapi.yaml`, embedded at build time (the native server
/// serves the same file).
const OPENAPI_YAML: &str = include_str!("../../../server/openapi.yaml");

/// [`OPENAPI_YAML`] as JSON; a spec that does not parse is logged and answered as an empty one,
/// as natively.
fn openapi_json() -> serde_json::Value {
    serde_norway::from_str(OPENAPI_YAML).unwrap_or_else(|e| {
        worker::console_error!("server/openapi.yaml does not parse: {e}");
        serde_json::json!({"openapi": "3.1.0", "info": {"title": "monodit-worker", "version": "0"}, "paths": {}})
    })
}

/// Percent-decodes one path segment; `None` when the bytes are not UTF-8.
fn urlencoding_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
