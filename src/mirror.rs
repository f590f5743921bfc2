//! mirror (placeholder until its first commit).
