//! The signed download of an r2-asset, with byte ranges, streamed from R2 (the native
//! server's is in `server/src/http/assets.rs`).

use crate::args;
use crate::assets::AssetRow;
use crate::db::{self, Db};
use crate::env::WorkerEnv;
use crate::http::{self, Answer};
use monodit_core::{Error, ErrorCode};
use monodit_service::assets as rules_assets;
use monodit_service::signing::{SignatureError, Signer};
use monodit_service::{Clock, Secret, Secrets};
use worker::{Request, Response};

/// `GET /v1/objects/{objectKey}?exp=&sig=`: the signature is the authorisation. Answers can
/// never run script on this origin (`nosniff`, `CSP: sandbox`; anything off the inline
/// allow-list, SVG included, is an `application/octet-stream` attachment). One `Range` is
/// served as 206; the body streams from R2 without entering wasm memory.
pub async fn download(
    req: &Request,
    db: &Db,
    objects: &worker::Bucket,
    env: &WorkerEnv,
    key: &str,
) -> Answer {
    let forbidden = |m: &str| Error::new(ErrorCode::Forbidden, m.to_string());
    let exp: u64 = http::query_param(req, "exp")?
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| forbidden("missing or malformed exp"))?;
    let sig = http::query_param(req, "sig")?.ok_or_else(|| forbidden("missing sig"))?;
    let signer = Signer::new(env.secret(Secret::Url).to_vec());
    match signer.verify(key, exp, &sig, env.now_secs()) {
        Ok(()) => {}
        Err(SignatureError::Invalid) => return Err(forbidden("invalid signature")),
        Err(SignatureError::Expired) => return Err(forbidden("this download URL has expired")),
    }
    if !rules_assets::is_object_key(key) {
        return Err(http::not_found("no such object"));
    }
    let row: AssetRow = db
        .first(
            "SELECT object_key, name, size, content_type, uploaded_at FROM assets WHERE object_key = ?1",
            args![key],
        )
        .await?
        .ok_or_else(|| http::not_found("no such object"))?;
    let size = row.size.max(0) as u64;
    let range = rules_assets::parse_range(http::header(req, "range").as_deref(), size);
    let mut get = objects.get(key);
    if let Some((a, b)) = range {
        get = get.range(worker::Range::OffsetWithLength {
            offset: a,
            length: b - a + 1,
        });
    }
    let object = get
        .execute()
        .await
        .map_err(|e| db::internal("R2 get", e))?
        .ok_or_else(|| http::not_found("no such object"))?;
    let body = object
        .body()
        .ok_or_else(|| http::not_found("no such object"))?
        .response_body()
        .map_err(http::runtime)?;
    let stored_type = rules_assets::normalize_content_type(&row.content_type);
    let inline = rules_assets::inline_allowed(&stored_type);
    let content_type = if inline {
        stored_type
    } else {
        "application/octet-stream".to_string()
    };
    let mut r = Response::from_body(body).map_err(http::runtime)?;
    let h = r.headers_mut();
    let length = range.map(|(a, b)| b - a + 1).unwrap_or(size);
    let disposition =
        rules_assets::disposition(if inline { "inline" } else { "attachment" }, &row.name);
    for (k, v) in [
        ("content-type", content_type.as_str()),
        ("content-length", &length.to_string()),
        ("accept-ranges", "bytes"),
        ("content-disposition", &disposition),
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "sandbox"),
        ("cross-origin-resource-policy", "cross-origin"),
        ("access-control-allow-origin", "*"),
        ("cache-control", "private, max-age=3600"),
    ] {
        h.set(k, v).map_err(http::runtime)?;
    }
    Ok(match range {
        Some((a, b)) => {
            h.set("content-range", &format!("bytes {a}-{b}/{size}"))
                .map_err(http::runtime)?;
            r.with_status(206)
        }
        None => r,
    })
}
