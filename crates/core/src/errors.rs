//! The one table of stable error codes shared by the SDK, the host and the server.
//!
//! A code is part of the public API: widget authors compare `err.message === "QUOTA_EXCEEDED"`
//! (docs/ERRORS.md), so a code's string never changes once released. Add codes; never
//! rename them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = ($s:literal, $status:literal, $retry:literal), )*) => {
        /// A stable, machine-readable error code.
        ///
        /// On the wire it is its stable string (`as_str`); see the serde impls below.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order (for docs and exhaustive tests).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable string, e.g. `"QUOTA_EXCEEDED"`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $s,)* }
            }

            /// The HTTP status the server answers with for this code.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// Whether a client may retry the same request later and expect it to succeed
            /// (network trouble, timeouts). Permanent failures roll optimistic writes back.
            pub const fn is_transient(self) -> bool {
                match self { $(ErrorCode::$variant => $retry,)* }
            }

            /// Parses a stable string back into a code.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s { $($s => Some(ErrorCode::$variant),)* _ => None }
            }

            /// Every stable string, for serde's "unknown variant" message.
            const NAMES: &'static [&'static str] = &[$($s,)*];
        }
    };
}

codes! {
    /// The write would take the user past their storage limit; nothing was changed.
    QuotaExceeded = ("QUOTA_EXCEEDED", 507, false),
    /// The user's plan does not include storage (Free plan: storage APIs are gated off).
    PlanRequired = ("PLAN_REQUIRED", 402, false),
    /// No such bucket, document, asset, item or instance for this user.
    NotFound = ("NOT_FOUND", 404, false),
    /// A conditional write lost a race (`If-Match` / expected version); carries the current version.
    Conflict = ("CONFLICT", 409, false),
    /// The caller is authenticated but not allowed to do this.
    Forbidden = ("FORBIDDEN", 403, false),
    /// Missing or unknown bearer token.
    Unauthenticated = ("UNAUTHENTICATED", 401, false),
    /// The widget's manifest declares no binding for the backend it tried to use.
    NoBinding = ("NO_BINDING", 403, false),
    /// The bucket was created with another (backend, schemaId, schemaVersion) contract.
    IncompatibleBucket = ("INCOMPATIBLE_BUCKET", 409, false),
    /// `ctx.storage.<name>` names a collection the manifest does not declare.
    UndeclaredCollection = ("UNDECLARED_COLLECTION", 400, false),
    /// A query filters or orders on a field no declared index supports.
    NotIndexed = ("NOT_INDEXED", 400, false),
    /// An argument has the wrong type, shape, range or grammar.
    InvalidArgument = ("INVALID_ARGUMENT", 400, false),
    /// The manifest's plugin id already belongs to a widget served from another source; its
    /// collections and kv stay that widget's (`detail`: pluginId, source, instanceId).
    PluginIdTaken = ("PLUGIN_ID_TAKEN", 409, false),
    /// The user already holds as many of a thing as one user may create (plugin ids, instances,
    /// index declarations); `detail` names the limit. Delete some first.
    LimitExceeded = ("LIMIT_EXCEEDED", 403, false),
    /// The manifest is invalid; `detail` lists every problem with its JSON path.
    InvalidManifest = ("INVALID_MANIFEST", 400, false),
    /// A pagination cursor was tampered with, truncated, or belongs to another query.
    InvalidCursor = ("INVALID_CURSOR", 400, false),
    /// The body, document or message exceeds its size limit.
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413, false),
    /// `connect()` was called in a page that no host embedded.
    NotEmbedded = ("NOT_EMBEDDED", 400, false),
    /// The host and widget speak different protocol versions.
    UnsupportedProtocol = ("UNSUPPORTED_PROTOCOL", 400, false),
    /// The browser could not read a local file or blob handed to the SDK (it was deleted,
    /// changed or access was refused); nothing reached the backend.
    FileUnreadable = ("FILE_UNREADABLE", 400, false),
    /// The other side did not answer in time.
    Timeout = ("TIMEOUT", 504, true),
    /// The backend could not be reached; writes stay queued and are retried.
    Network = ("NETWORK", 503, true),
    /// Too many requests; retry later.
    RateLimited = ("RATE_LIMITED", 429, true),
    /// The widget was unmounted or the host shut down while the call was pending.
    Closed = ("CLOSED", 410, false),
    /// An unexpected failure on the server or host; reported, never silent.
    Internal = ("INTERNAL", 500, true),
}

impl ErrorCode {
    /// Maps an HTTP status with no parsable body to the closest code.
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthenticated,
            402 => ErrorCode::PlanRequired,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 | 412 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            507 => ErrorCode::QuotaExceeded,
            400..=499 => ErrorCode::InvalidArgument,
            502..=504 => ErrorCode::Network,
            _ => ErrorCode::Internal,
        }
    }
}

// Written by hand over `as_str`/`parse` rather than derived: the derived enum visitor is
// compiled once per deserializer and was ~6 KB of the host's wasm (bench/README.md, "Bundle
// size"). Same wire form (the string) and the same "unknown variant" error.
impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ErrorCode::parse(&s).ok_or_else(|| serde::de::Error::unknown_variant(&s, ErrorCode::NAMES))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its stable code, a human message, and optional structured detail
/// (for example `{"currentVersion": 7}` on CONFLICT, or the list of manifest problems).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for people; may change between releases.
    pub message: String,
    /// Structured context for programs; shape documented per code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Error {
    /// An error with a code and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// Attaches structured detail.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Shorthand for [`ErrorCode::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Error::new(code, code.as_str())
    }
}

/// Result with the shared [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::parse("quota_exceeded"), None);
        for &code in ErrorCode::ALL {
            let json = format!("\"{}\"", code.as_str());
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        let err = serde_json::from_str::<ErrorCode>("\"quota_exceeded\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `quota_exceeded`"),
            "{err}"
        );
        assert!(serde_json::from_str::<ErrorCode>("3").is_err());
    }

    #[test]
    fn seed_codes_have_expected_strings_and_statuses() {
        assert_eq!(ErrorCode::QuotaExceeded.as_str(), "QUOTA_EXCEEDED");
        assert_eq!(ErrorCode::QuotaExceeded.http_status(), 507);
        assert_eq!(ErrorCode::PlanRequired.http_status(), 402);
        assert!(ErrorCode::Network.is_transient());
        assert!(!ErrorCode::QuotaExceeded.is_transient());
        assert_eq!(ErrorCode::from_http_status(507), ErrorCode::QuotaExceeded);
        assert_eq!(ErrorCode::from_http_status(418), ErrorCode::InvalidArgument);
    }

    /// docs/ERRORS.md is what widget authors read: every code must be there, with its status.
    #[test]
    fn docs_list_every_code() {
        let doc = include_str!("../../../docs/ERRORS.md");
        for &code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.http_status());
            assert!(
                doc.contains(&row),
                "docs/ERRORS.md lacks the row for {code}"
            );
        }
    }

    #[test]
    fn error_body_shape() {
        let e = Error::new(ErrorCode::Conflict, "version moved")
            .with_detail(serde_json::json!({"currentVersion": 3}));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "CONFLICT");
        assert_eq!(v["detail"]["currentVersion"], 3);
        let back: Error = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn http_statuses_without_a_body_map_to_the_closest_code() {
        use ErrorCode::*;
        for (status, code) in [
            (401, Unauthenticated),
            (402, PlanRequired),
            (403, Forbidden),
            (404, NotFound),
            (409, Conflict),
            (412, Conflict),
            (413, PayloadTooLarge),
            (429, RateLimited),
            (507, QuotaExceeded),
            (400, InvalidArgument),
            (405, InvalidArgument),
            (499, InvalidArgument),
            (502, Network),
            (503, Network),
            (504, Network),
            (500, Internal),
            (501, Internal),
            (505, Internal),
            (200, Internal),
        ] {
            assert_eq!(ErrorCode::from_http_status(status), code, "{status}");
        }
    }

    #[test]
    fn a_code_displays_as_its_wire_name() {
        assert_eq!(ErrorCode::QuotaExceeded.to_string(), "QUOTA_EXCEEDED");
        assert_eq!(format!("{}", ErrorCode::Internal), "INTERNAL");
    }
}
