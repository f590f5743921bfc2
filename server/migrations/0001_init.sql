-- Migration 0001: the schema of the first release, shared by both backends: the native
-- server applies it at start (server/src/db.rs, tracked in d1_migrations), the Worker's D1
-- database gets it from `wrangler d1 migrations apply` (crates/worker/wrangler.toml).
-- Portable SQL only: no PRAGMA, no BEGIN (D1 refuses both; the native server sets its
-- pragmas in code). One statement per `;` at a line's end; comments on their own lines.
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  plan TEXT NOT NULL,
  addons INTEGER NOT NULL DEFAULT 0,
  used_bytes INTEGER NOT NULL DEFAULT 0,
  reserved_bytes INTEGER NOT NULL DEFAULT 0,
  collection_bytes INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  limit_override INTEGER,
  kv_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS buckets (
  user_id TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  schema_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  bytes INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, backend, bucket_id)
);
CREATE TABLE IF NOT EXISTS bucket_tombstones (
  user_id TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  last_version INTEGER NOT NULL,
  PRIMARY KEY (user_id, backend, bucket_id)
);
CREATE TABLE IF NOT EXISTS documents (
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, bucket_id)
);
CREATE TABLE IF NOT EXISTS document_mutations (
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  mutation_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, bucket_id, mutation_id)
);
CREATE INDEX IF NOT EXISTS document_mutations_age ON document_mutations (updated_at);
CREATE TABLE IF NOT EXISTS assets (
  object_key TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_bucket ON assets (user_id, bucket_id, uploaded_at);
CREATE TABLE IF NOT EXISTS instances (
  user_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  widget_id TEXT NOT NULL,
  manifest TEXT NOT NULL,
  config TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  source TEXT,
  PRIMARY KEY (user_id, instance_id)
);
CREATE TABLE IF NOT EXISTS instance_bindings (
  user_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  binding_key TEXT NOT NULL,
  backend TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  config_key TEXT,
  isolated INTEGER NOT NULL,
  PRIMARY KEY (user_id, instance_id, binding_key)
);
CREATE INDEX IF NOT EXISTS instance_bindings_by_bucket ON instance_bindings (user_id, backend, bucket_id);
CREATE TABLE IF NOT EXISTS plugin_collections (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  collection TEXT NOT NULL,
  indexes TEXT NOT NULL,
  PRIMARY KEY (user_id, plugin_id, collection)
);
-- ctx.kv (settings:/state: keys): one JSON value per (user, plugin, key). `size` is
-- the value's byte length as stored, what quota counted (refunds use it, never a re-measure).
-- The primary key's index serves key lookups and prefix ranges in key order (BINARY).
CREATE TABLE IF NOT EXISTS plugin_kv (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  size INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, plugin_id, key)
);
-- The source each plugin id is pinned to (core `plugins`): the last accepted claim. It keeps
-- guarding the plugin's data after its instances are gone; deleting the data releases it.
CREATE TABLE IF NOT EXISTS plugin_pins (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (user_id, plugin_id)
);
CREATE TABLE IF NOT EXISTS plugin_indexes (
  name TEXT PRIMARY KEY,
  plugin_id TEXT NOT NULL,
  collection TEXT NOT NULL
);
-- Objects being written (a single-shot upload streaming, a resumable upload completing):
-- recorded before the first byte reaches the store, removed in the transaction that settles
-- the asset. The sweep deletes every stored object that neither `assets` nor this table
-- names, so a crash leaves only garbage it can find. `upload_id` marks a completion.
CREATE TABLE IF NOT EXISTS pending_objects (
  object_key TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  upload_id TEXT,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pending_objects_by_upload ON pending_objects (upload_id);
-- Objects to delete: a deleted asset's, a failed write's, one a restart cut short. Recorded
-- in the transaction that hides and refunds them, removed once the object is gone, so the
-- sweep finishes any deletion a crash interrupted without listing the store.
CREATE TABLE IF NOT EXISTS doomed_objects (
  object_key TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
-- Idempotency-Key of single-shot uploads, per user: `done = 0` while the first request
-- streams, then the asset it produced (a copy, so a retry answers the same AssetInfo).
CREATE TABLE IF NOT EXISTS asset_upload_keys (
  user_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  object_key TEXT NOT NULL,
  done INTEGER NOT NULL,
  bucket_id TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, idem_key)
);
-- Resumable uploads: `state` is 'open' (parts arriving; `size` reserved) or 'done'
-- (`object_key` is the asset it produced). Parts are staged on disk, one row per stored part.
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  schema_id TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  part_size INTEGER NOT NULL,
  state TEXT NOT NULL,
  object_key TEXT,
  uploaded_at INTEGER,
  touched_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, idem_key)
);
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (state, touched_at);
CREATE TABLE IF NOT EXISTS upload_parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)
);
-- Plugin collections (`_plugin_storage` plus `user_id`); the same text as
-- monodit_core::query::CREATE_TABLE_SQL (a test in server/src/db.rs checks it).
CREATE TABLE IF NOT EXISTS _plugin_storage (
  user_id TEXT NOT NULL,
  plugin_id TEXT NOT NULL,
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT,
  updated_at TEXT,
  PRIMARY KEY (user_id, plugin_id, collection, id)
);
