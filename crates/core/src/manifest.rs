//! Widget manifests (placeholder: filled in by the core rules work).
