//! protocol (placeholder until its first commit).
