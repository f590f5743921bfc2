//! sync (placeholder until its first commit).
