//! errors (placeholder until its first commit).
