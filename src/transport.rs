//! transport (placeholder until its first commit).
