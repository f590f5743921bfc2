//! The Worker's [`monodit_service::Env`]: `Date.now()`, `crypto.getRandomValues` and the
//! secret bindings (`URL_SECRET`, `CURSOR_SECRET`, set with `wrangler secret put`).

use monodit_core::{Error, ErrorCode};
use monodit_service::{Clock, Random, Secret, Secrets};
use wasm_bindgen::{JsCast, JsValue};

/// The binding name of a secret: the service layer's name, upper-cased.
pub fn binding_name(which: Secret) -> String {
    which.name().to_ascii_uppercase()
}

/// Clock, random source and secrets of one request.
pub struct WorkerEnv {
    url_secret: Vec<u8>,
    cursor_secret: Vec<u8>,
    upload_ttl_ms: i64,
}

/// How long an open upload session may go untouched before it expires, when
/// `MONODIT_UPLOAD_TTL_SECS` does not say (the native `--upload-ttl-secs` default).
pub const DEFAULT_UPLOAD_TTL_SECS: u64 = 24 * 3600;

impl WorkerEnv {
    /// Reads the secrets from the Worker's bindings. A missing or empty secret is a
    /// deployment error, answered INTERNAL (never a fallback key).
    pub fn from_bindings(env: &worker::Env) -> Result<WorkerEnv, Error> {
        let read = |which: Secret| -> Result<Vec<u8>, Error> {
            let name = binding_name(which);
            let value = env.secret(&name).map(|s| s.to_string()).unwrap_or_default();
            if value.is_empty() {
                worker::console_error!("the secret {name} is not set (wrangler secret put {name})");
                return Err(Error::new(
                    ErrorCode::Internal,
                    "internal error (server secrets missing)",
                ));
            }
            Ok(value.into_bytes())
        };
        let ttl_secs = match env.var("MONODIT_UPLOAD_TTL_SECS") {
            Err(_) => DEFAULT_UPLOAD_TTL_SECS,
            Ok(v) => v.to_string().trim().parse::<u64>().map_err(|_| {
                worker::console_error!("MONODIT_UPLOAD_TTL_SECS must be a number of seconds");
                Error::new(
                    ErrorCode::Internal,
                    "internal error (MONODIT_UPLOAD_TTL_SECS is misconfigured)",
                )
            })?,
        };
        Ok(WorkerEnv {
            url_secret: read(Secret::Url)?,
            cursor_secret: read(Secret::Cursor)?,
            upload_ttl_ms: i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        })
    }

    /// How long an open upload session may go untouched before it expires, in ms
    /// (`MONODIT_UPLOAD_TTL_SECS`, the native `--upload-ttl-secs`).
    pub fn upload_ttl_ms(&self) -> i64 {
        self.upload_ttl_ms
    }
}

impl Clock for WorkerEnv {
    fn now_ms(&self) -> u64 {
        let now = js_sys::Date::now();
        if now.is_finite() && now > 0.0 {
            now as u64
        } else {
            0
        }
    }
}

impl Random for WorkerEnv {
    fn fill_random(&self, buf: &mut [u8]) {
        fill_random(buf);
    }
}

impl Secrets for WorkerEnv {
    fn secret(&self, which: Secret) -> &[u8] {
        match which {
            Secret::Url => &self.url_secret,
            Secret::Cursor => &self.cursor_secret,
        }
    }
}

/// Fills `buf` from `crypto.getRandomValues` (at most 65536 bytes per call, as the Web
/// Crypto API allows). The Workers runtime always provides it; without it this aborts the
/// request rather than hand out predictable ids.
pub fn fill_random(buf: &mut [u8]) {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .expect("the Workers runtime has crypto");
    let get = js_sys::Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .expect("the Workers runtime has crypto.getRandomValues");
    for chunk in buf.chunks_mut(65536) {
        let array = js_sys::Uint8Array::new_with_length(chunk.len() as u32);
        get.call1(&crypto, &array)
            .expect("crypto.getRandomValues fills a Uint8Array");
        array.copy_to(chunk);
    }
}
