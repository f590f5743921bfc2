//! Decisions without I/O: the adapter reads the facts inside its transaction, asks a rule
//! what to do, and executes the answer. The rules live in the target-independent service
//! layer (`monodit-service`, `crates/service`), which a Cloudflare Workers + D1 adapter
//! reuses as is; they are re-exported here so the store's callers keep one path. The SQL
//! that gathers facts and applies decisions stays plain SQLite that D1 runs.

pub use monodit_service::rules::{
    decide_document_put, decide_upload, DocumentDecision, DocumentFacts, DocumentWrite, QuotaFacts,
};
