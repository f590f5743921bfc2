//! The server's error type: a core [`Error`] plus conversions from the libraries underneath.
//!
//! Every failure leaves the server as `{code, message, detail?}` with the status of its code,
//! so the SDK can map it back to `err.message === "QUOTA_EXCEEDED"` without guessing.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use monodit_core::{Error, ErrorCode};

/// A failure on its way to the client. Library errors become `INTERNAL` (logged, never leaked).
#[derive(Debug)]
pub struct AppError(pub Error);

/// Result of store and handler functions.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError(Error::new(code, message))
    }

    /// `INVALID_ARGUMENT` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::InvalidArgument, message)
    }

    /// `NOT_FOUND` with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::NotFound, message)
    }

    /// Attaches structured detail.
    pub fn with_detail(self, detail: serde_json::Value) -> Self {
        AppError(self.0.with_detail(detail))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// An internal failure: logged with its cause, answered without it.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        AppError::new(ErrorCode::Internal, format!("internal error ({context})"))
    }
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError(e)
    }
}

impl From<ErrorCode> for AppError {
    fn from(code: ErrorCode) -> Self {
        AppError(Error::from(code))
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::internal("database", e)
    }
}

impl From<object_store::Error> for AppError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => AppError::not_found("object not found"),
            other => AppError::internal("object store", other),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::internal("json encoding", e)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}
