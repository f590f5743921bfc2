//! The TypeScript declarations of the `ctx` a widget gets from `connect()` (its facades are
//! plain JS, `ctx.js`, so wasm-bindgen derives none of them), options and events, emitted
//! into `monodit_bridge.d.ts`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const WIDGET_TS: &'static str = r#"
/** The object `connect()` resolves with. */
export interface Ctx {
  /** This widget's instance id (chosen by the host; the widget never names it). */
  readonly instanceId: string;
  /** `"widget"` or `"theme"`. */
  readonly kind: string;
  /** The current instance config (updated before `onConfigChange` callbacks run). */
  readonly config: Record<string, unknown>;
  /** The manifest's storage bindings as the host sees them: `[{key, backend}]`. */
  readonly bindings: Array<{key: string, backend: "d1-json" | "r2-assets"}>;
  /**
   * Calls `cb(config)` after every config change (the host has already re-bound store and
   * assets subscriptions to the new buckets). Returns a function that unsubscribes.
   */
  onConfigChange(cb: (config: Record<string, unknown>) => void): () => void;
  /** `ctx.store`: the manifest's (first) d1-json binding. */
  readonly store: Store;
  /** `ctx.assets`: the manifest's (first) r2-assets binding. */
  readonly assets: Assets;
  /**
   * `ctx.binding(key)`: store and assets of a named binding, for manifests that declare
   * more than one binding of a backend.
   */
  binding(key: string): Binding;
  /** `ctx.cache`: browser-only, per instance, never sent to the server. */
  readonly cache: Cache;
  /** `ctx.kv`: per-plugin settings and state on the server. */
  readonly kv: KV;
  /** `ctx.log`: messages to the host's console and event log. */
  readonly log: Log;
  /** `ctx.storage`: the declared collections. */
  readonly storage: Storage;
  /** Closes the port (pending calls reject CLOSED). Pages normally never call this. */
  close(): void;
}
/** A named binding's facades (`ctx.binding(key)`). */
export interface Binding {
  /** Document store of this binding (d1-json). */
  readonly store: Store;
  /** Asset bucket of this binding (r2-assets). */
  readonly assets: Assets;
}
/** `ctx.store`: one JSON document per bucket. */
export interface Store {
  /**
   * The document: the host's cached snapshot first (then it revalidates in the
   * background). `namespace` picks an explicit bucket. Resolves `null` for a new bucket.
   */
  get(namespace?: string | null): Promise<any>;
  /**
   * Writes the document: subscribers see `optimistic` at once; resolves when the server
   * confirmed (`confirmed` event). While offline it stays pending, however long that takes
   * (the host keeps the write in its durable outbox and retries; it never rejects TIMEOUT
   * once queued). A permanent failure (QUOTA_EXCEEDED, ...) rolls back (`rollback` event)
   * and rejects with the code as `err.message`. `options` is a namespace, or
   * `{namespace, ifVersion}`: with `ifVersion` the write applies only while the document
   * is at that version, else it rejects CONFLICT with `err.data = {value, version}`.
   */
  set(value: any, options?: string | null | StoreSetOptions): Promise<StoreWriteResult>;
  /**
   * Read-modify-write without lost updates: calls `fn(current)` with the document and
   * writes what it returns (a value or a promise of one) on the version it read. When
   * another device or tab wrote first (CONFLICT), `fn` runs again on the server's value,
   * up to 8 times, then the call rejects CONFLICT. Offline it applies locally at once
   * (`optimistic`) and stays pending like `set`; when the write reaches a server that
   * moved on meanwhile, `fn` re-runs on the server's value while this page is open (a
   * write queued by a page that is gone rolls back instead, with a `rollback` event).
   */
  update(fn: (current: any) => unknown, namespace?: string | null): Promise<StoreWriteResult>;
  /**
   * Calls `cb(value, meta)` on every change of the bucket (`namespace`, or the bound
   * bucket when `null`). Changes only: render the current value from `get()` first. A
   * bound subscription follows config changes and re-links, and is handed the new bucket's
   * value at once (`revalidated`). Callbacks may fire more than once per logical edit
   * (optimistic, confirmed, revalidated). `onError` receives a failed subscription (e.g.
   * NO_BINDING). Returns an unsubscribe function.
   */
  subscribe(namespace: string | null, cb: (value: any, meta: StoreMeta) => void, onError?: (err: MonoditError) => void): () => void;
}
/** `ctx.assets`: a set of files per bucket. */
export interface Assets {
  /**
   * The same facade on an explicit bucket id (dynamic themes; widgets may name a new
   * bucket or one created with the same contract, else INCOMPATIBLE_BUCKET).
   */
  withBucket(bucketId: any): Assets;
  /**
   * Uploads a `File`/`Blob` (it crosses the port as a Blob, never base64) and resolves
   * with its download URL, stored exactly once however often the host had to retry.
   * QUOTA_EXCEEDED rejects with `err.message === "QUOTA_EXCEEDED"`; a file the browser can
   * no longer read (deleted or changed on disk since it was picked) with FILE_UNREADABLE.
   */
  upload(file: Blob | File, options?: UploadOptions): Promise<string>;
  /** The bucket's assets (the source of truth for its contents). */
  list(): Promise<AssetInfo[]>;
  /** Deletes one asset by its `objectKey`. */
  delete(objectKey: any): Promise<void>;
  /**
   * Calls `cb(assets, meta)` whenever the bucket's contents change (uploads, deletes,
   * revalidation, re-binding after a config change). Returns an unsubscribe function.
   */
  subscribe(cb: (assets: AssetInfo[], meta: AssetMeta) => void, onError?: (err: MonoditError) => void): () => void;
}
/**
 * `ctx.cache`: browser-only per-instance data (never sent to the server, not counted in
 * quota). Values are anything structured-cloneable, Blobs included. Keys are 1 to 1,024
 * bytes of UTF-8 (1 KiB); a longer key rejects with INVALID_ARGUMENT.
 */
export interface Cache {
  /** The value, or `undefined` when missing or expired. `key`: 1 to 1,024 bytes of UTF-8. */
  get(key: any): Promise<any>;
  /** Stores a value; `ttlMs` expires it. `key`: 1 to 1,024 bytes of UTF-8. */
  set(key: any, value: any, options?: CacheSetOptions): Promise<void>;
  /** Removes a key. */
  delete(key: any): Promise<void>;
  /** Every live key. */
  keys(): Promise<string[]>;
  /** Removes every key of this instance. */
  clear(): Promise<void>;
}
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
