//! Core's integration tests, one module per file, built as one test binary: `cargo mutants`
//! rebuilds and links every test binary of the crate for each mutant, and five binaries
//! (each linking the bundled SQLite or not) cost about as much to build as the library
//! itself. `autotests = false` in Cargo.toml keeps cargo from also building each file alone.

mod demo_manifests;
mod outbox_model;
mod queue;
mod rng;
mod sqlite_planner;
mod tabs_model;
