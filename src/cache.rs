//! cache (placeholder until its first commit).
