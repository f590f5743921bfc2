//! The TypeScript declarations of the `ctx` shapes wasm-bindgen cannot derive (options,
//! events, `KV`, `Log`, collections), emitted into `monodit_bridge.d.ts`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const WIDGET_TS: &'static str = r#"
/** Options of `connect()`. */
export interface ConnectOptions {
  /** How long to wait for the host's handshake before rejecting NOT_EMBEDDED (ms, default 5000). */
  timeoutMs?: number;
  /** How long each call waits for the host before rejecting TIMEOUT (ms, default 20000;
   *  uploads wait at least 60000 without progress). Only the host's answer is timed: once
   *  the host has queued a `store.set`/`store.update` write (offline included), the call
   *  waits for the server without a deadline and never rejects TIMEOUT. */
  callTimeoutMs?: number;
}
/** Why a store callback fired (a logical edit may fire several: optimistic, then confirmed). */
export type StoreEventKind = "optimistic" | "confirmed" | "revalidated" | "rollback";
/** Second argument of `ctx.store.subscribe` callbacks. */
export interface StoreMeta {
  kind: StoreEventKind;
  /** Server version of the value (the last confirmed version while `pending`). */
  version: number;
  /** True while a local write is not yet confirmed by the server. */
  pending: boolean;
  /** The bucket id the value belongs to. */
  bucket: string;
}
/** What `ctx.store.set` resolves with once the server confirmed the write. */
export interface StoreWriteResult { value: unknown; version: number; pending: boolean; bucket: string; }
/** Options of `ctx.store.set` (a string is the same as `{ namespace }`). */
export interface StoreSetOptions {
  /** Explicit bucket (see `get`). */
  namespace?: string | null;
  /** Write only while the document is at this version (`meta.version` / `StoreWriteResult.version`,
   *  0 = never written), with this browser's pending writes on top; else reject CONFLICT
   *  with `err.data` = the current {@link StoreConflict}. */
  ifVersion?: number;
}
/** `err.data` of a CONFLICT from `ctx.store.set(value, { ifVersion })` or a stale queued write:
 *  what this browser shows now (its own queued writes included), the last confirmed
 *  `version`, and `head`, the read token `ctx.store.update` writes with (which queued write
 *  the value is; `null` when it is a confirmed document). */
export interface StoreConflict { value: unknown; version: number; head?: number | null; }
/** One asset of `ctx.assets.list()`. */
export interface AssetInfo {
  objectKey: string; name: string; size: number; contentType: string; uploadedAt: number;
  /** Signed, expiring download URL usable in `<img src>`. */
  url: string;
  /** When `url` stops working, epoch ms (the SDK re-lists before then). */
  urlExpiresAt?: number;
}
/** Second argument of `ctx.assets.subscribe` callbacks: the bucket's list changed (upload,
 *  delete, revalidation, another tab). `version` is the bucket's change counter. */
export interface AssetMeta { kind: "changed"; version: number; bucket: string; }
/** Options of `ctx.assets.upload`. */
export interface UploadOptions {
  /** Called with (loadedBytes, totalBytes) while the file is sent to the backend. `loaded`
   *  never goes backwards: a retried or resumed upload reports from the bytes already
   *  stored, and the last call has `loaded === total`. */
  onProgress?: (loaded: number, total: number) => void;
  /** File name to record (defaults to `File.name`, else "file"). */
  name?: string;
}
/** Options of `ctx.cache.set`. */
export interface CacheSetOptions { ttlMs?: number; }
/**
 * A `query()` where clause: indexed field → exact value, or an operator object with `in`
 * (array), `gt`, `gte`, `lt`, `lte` or `startsWith`. Values are strings, numbers or booleans.
 */
export type WhereClause = Record<string, string | number | boolean | Record<string, unknown>>;
/** Options of `query()`. */
export interface QueryOptions {
  where?: WhereClause;
  /** Exactly one indexed field, e.g. `{ createdAt: "desc" }` (ties are broken by id). */
  orderBy?: Record<string, "asc" | "desc">;
  /** Page size: an integer from 1 to 1000, default 50. */
  limit?: number;
  cursor?: string;
}
/** One page of `query()` results. */
export interface PaginatedResult<T> { items: T[]; cursor?: string; hasMore: boolean; }
/** One declared collection, `ctx.storage.<name>`. */
export interface StorageCollection<T = unknown> {
  get(id: string): Promise<T | null>;
  put(id: string, data: T): Promise<void>;
  delete(id: string): Promise<boolean>;
  exists(id: string): Promise<boolean>;
  getMany(ids: string[]): Promise<Map<string, T>>;
  putMany(items: Array<{ id: string; data: T }>): Promise<void>;
  deleteMany(ids: string[]): Promise<number>;
  query(options?: QueryOptions): Promise<PaginatedResult<{ id: string; data: T }>>;
  count(where?: WhereClause): Promise<number>;
}
/**
 * `ctx.storage`: one property per collection the manifest declares. Reading any other
 * string property throws UNDECLARED_COLLECTION synchronously (except `then`, `toJSON`,
 * `toString`, `valueOf`, `constructor` and symbols, so `await`/logging stay harmless);
 * `in`, `Object.keys` and spreading never throw.
 */
export type Storage = Record<string, StorageCollection>;
/** The `ctx` a widget gets from `connect()`, under the name plugin code types it with. */
export type PluginContext = Ctx;
/**
 * `ctx.kv`: small JSON values per plugin on the server, by convention under
 * `settings:` (user-configurable) and `state:` (internal) key prefixes. Needs the manifest's
 * `id` (or `slug`), like `ctx.storage`; counts toward the quota.
 */
export interface KV {
  /** The value, or `null` when the key is unset. */
  get<T = unknown>(key: string): Promise<T | null>;
  set(key: string, value: unknown): Promise<void>;
  /** Whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Every entry whose key starts with `prefix` (all without it), in key order; more than
   *  10,000 rejects PAYLOAD_TOO_LARGE (list a narrower prefix). */
  list<T = unknown>(prefix?: string): Promise<Array<{ key: string; value: T }>>;
}
/** `ctx.log`: messages to the host page's console and event log (never throws). */
export interface Log {
  debug(message: string, data?: unknown): void;
  info(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}
"#;
