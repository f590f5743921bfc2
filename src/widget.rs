//! widget (placeholder until its first commit).
