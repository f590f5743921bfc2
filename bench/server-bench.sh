#!/usr/bin/env bash
# Server benchmark (issue 3 "Speed"): batch meta for 100 buckets and an indexed collection
# query over 100,000 items, over real HTTP on 127.0.0.1, next to raw rusqlite running the same
# SQL in the same run. Bounded: a few seconds per scenario. Writes bench/server-results.md.
#
#   bash bench/server-bench.sh [--seconds N] [--concurrency N] [--items N]
#
# The workspace's release profile is tuned for wasm size (opt-level "z", LTO); the server is
# measured at opt-level 3 instead, through cargo's profile environment variables.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_OPT_LEVEL=3
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_PANIC=unwind
cargo run --quiet --release -p monodit-server --example server-bench -- --out bench/server-results.md "$@"
