//! CORS as the native server answers it (`cors` and `with_cors` in `server/src/http/mod.rs`,
//! tower-http's `CorsLayer`): the origins come from the `MONODIT_ALLOW_ORIGIN` variable (the
//! native `--allow-origin`, here one string of origins separated by commas or spaces; `*`
//! allows any). Empty allows none, except in dev mode, where it allows any, as natively.
//!
//! Every answer (errors too, so the SDK can read their codes) gets `Vary`,
//! `Access-Control-Expose-Headers: etag` and, for an allowed origin,
//! `Access-Control-Allow-Origin`. Any `OPTIONS` request, on any path, is a preflight: 200
//! with the methods, the SDK's request headers and a 10 minute max age; for an origin not
//! allowed it carries no `Access-Control-Allow-Origin`, so the browser refuses.

use crate::http;
use monodit_core::{Error, ErrorCode};
use worker::{Method, Request, Response};

const ALLOW_METHODS: &str = "GET,POST,PUT,DELETE,HEAD";
const ALLOW_HEADERS: &str = "authorization,content-type,if-match,if-none-match,idempotency-key";
const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

/// The origins answers are shared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Cors {
    /// Any origin (`*`).
    Any,
    /// Exactly these origins (none when empty).
    List(Vec<String>),
}

/// Whether `o` is an origin the native server would accept for `--allow-origin`.
fn plausible(o: &str) -> bool {
    o == "*"
        || o == "null"
        || ((o.starts_with("http://") || o.starts_with("https://"))
            && !o.contains(char::is_whitespace)
            && o.matches('/').count() == 2)
}

impl Cors {
    /// Parses `MONODIT_ALLOW_ORIGIN`. An entry that is not an origin is a deployment error:
    /// the native server refuses to start on it; here every request answers INTERNAL.
    pub fn parse(value: &str, dev: bool) -> Result<Cors, Error> {
        let origins: Vec<String> = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|o| !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_string())
            .collect();
        if let Some(bad) = origins.iter().find(|o| !plausible(o)) {
            worker::console_error!(
                "MONODIT_ALLOW_ORIGIN: {bad:?} is not an origin (scheme://host[:port], \"*\" or \"null\")"
            );
            return Err(Error::new(
                ErrorCode::Internal,
                "internal error (MONODIT_ALLOW_ORIGIN is misconfigured)",
            ));
        }
        if origins.iter().any(|o| o == "*") || (dev && origins.is_empty()) {
            return Ok(Cors::Any);
        }
        Ok(Cors::List(origins))
    }

    /// Reads the Worker's variable (unset: empty).
    pub fn from_env(env: &worker::Env, dev: bool) -> Result<Cors, Error> {
        let value = env
            .var("MONODIT_ALLOW_ORIGIN")
            .map(|v| v.to_string())
            .unwrap_or_default();
        Cors::parse(&value, dev)
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        match self {
            Cors::Any => Some("*".to_string()),
            Cors::List(list) => origin
                .filter(|o| list.iter().any(|a| a == o))
                .map(str::to_string),
        }
    }

    /// The preflight answer, when `req` is one.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::Options {
            return None;
        }
        let mut r = Response::empty().ok()?;
        let h = r.headers_mut();
        let origin = http::header(req, "origin");
        if let Some(allow) = self.allow(origin.as_deref()) {
            h.set("access-control-allow-origin", &allow).ok()?;
        }
        for (k, v) in [
            ("access-control-allow-methods", ALLOW_METHODS),
            ("access-control-allow-headers", ALLOW_HEADERS),
            ("access-control-max-age", "600"),
            ("vary", VARY),
        ] {
            h.set(k, v).ok()?;
        }
        Some(r)
    }

    /// Adds the CORS headers to an answer for a request from `origin`.
    pub fn decorate(&self, origin: Option<&str>, mut r: Response) -> Response {
        let h = r.headers_mut();
        let _ = h.append("vary", VARY);
        let _ = h.set("access-control-expose-headers", "etag");
        if let Some(allow) = self.allow(origin) {
            let _ = h.set("access-control-allow-origin", &allow);
        }
        r
    }
}
