//! http (placeholder until its first commit).
