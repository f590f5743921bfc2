//! host (placeholder until its first commit).
