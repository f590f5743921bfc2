//! Bucket identity, resolution and compatibility (seed 000 "Bucket Resolution").

use serde::{Deserialize, Serialize};

/// A storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Backend {
    /// One JSON document per bucket (`ctx.store`).
    #[serde(rename = "d1-json")]
    D1Json,
    /// A set of files per bucket (`ctx.assets`).
    #[serde(rename = "r2-assets")]
    R2Assets,
}

impl Backend {
    /// The manifest / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::D1Json => "d1-json",
            Backend::R2Assets => "r2-assets",
        }
    }
}
