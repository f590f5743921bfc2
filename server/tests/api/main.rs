//! Integration tests: the real server, in-process on 127.0.0.1:0 with a temporary SQLite file
//! and object directory, driven over real HTTP with reqwest. One binary (modules below) so
//! the suite links once.

mod common;

mod assets;
mod buckets;
mod cli;
mod collections;
mod cors;
mod crash;
mod documents;
mod hostile;
mod kv;
mod openapi;
mod plugins;
mod quota;
mod sweep;
mod uploads;
