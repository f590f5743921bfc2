//! Keyset cursors (placeholder: filled in by the core rules work).
