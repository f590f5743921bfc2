//! Quota helpers shared by the conformance and native tests.

pub const GB: u64 = 1_000_000_000;
