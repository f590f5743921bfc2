//! The TypeScript declarations of the host's option, topology and event shapes, emitted into
//! `monodit_bridge.d.ts` by wasm-bindgen (the methods' own types are on `Host` and
//! `MountHandle`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const HOST_TS: &'static str = r#"
/** Options of `Host.create`. */
export interface HostOptions {
  backendUrl: string; token: string;
  /** Files larger than this many bytes are uploaded with the resumable protocol: in 8 MiB
   *  parts, resumed at the first missing part after a network failure, and after a reload of
   *  this page when the same file is uploaded to the same bucket again. Default 16 MiB
   *  (16777216); 0 makes every non-empty upload resumable. */
  resumableUploadBytes?: number;
}
/** Options of `host.mount`. */
export interface MountOptions {
  instanceId: string;
  /** "widget" (default) or "theme" (themes never appear in topology). */
  kind?: "widget" | "theme";
  /** The widget manifest (storage bindings and collections; see the README). */
  manifest: Record<string, unknown>;
  /** Instance config: `storageNamespace`, binding config keys (`assetBucketId`, ...), anything else; at most 16 KiB of JSON (PAYLOAD_TOO_LARGE). */
  config?: Record<string, unknown>;
  /**
   * Where the widget's code comes from. Defaults to the iframe's URL without query or
   * fragment. The manifest's plugin id (its collections and `ctx.kv`) belongs to the source
   * of the instances already holding it: a widget from another source claiming the id fails
   * with PLUGIN_ID_TAKEN. Pass a stable publisher id (`"acme/forms"`) when one widget is
   * served from several URLs, e.g. versioned paths.
   */
  source?: string;
}
/** A widget connected to a bucket, in `host.topology()`. */
export interface TopologyInstance {
  instanceId: string; bindingKey: string;
  /** True when the bucket is the instance's own default ("Isolated"). */
  isolated: boolean;
  /** True when the instance is mounted on this page right now. */
  mounted: boolean;
}
/** One bucket of `host.topology()`. */
export interface TopologyBucket {
  backend: "d1-json" | "r2-assets"; schemaId: string; schemaVersion: number;
  bucketId: string; bytes: number; version: number; createdAt: number;
  instances: TopologyInstance[];
}
/** `host.topology()`: buckets with connected widgets (themes excluded), usage and quota. */
export interface Topology {
  buckets: TopologyBucket[];
  usage: { plan: "free" | "pro"; usedBytes: number; limitBytes: number; collectionBytes: number };
}
/** What `host.deleteBucket` reports. */
export interface DeletedBucket { refundedBytes: number; deletedObjects: number; disconnectedInstances: string[]; }
/** A plugin id of the user (`host.plugins()`): who holds it and what it stores. */
export interface PluginInfo {
  pluginId: string;
  /** The source the id is pinned to (see `MountOptions.source`). */
  source?: string;
  /** Registered instances whose manifest claims it. */
  instances: string[];
  /** Collection items and their bytes, kv entries and their bytes (all count in the quota). */
  items: number; itemBytes: number; kvKeys: number; kvBytes: number;
}
/** What `host.deletePluginData` reports. `released`: no instance holds the id any more, so
 *  its pin is gone too. */
export interface DeletedPlugin { deletedItems: number; deletedKeys: number; refundedBytes: number; released: boolean; }
/** Entries of the host's event log (`host.onEvent`). */
export type HostEvent =
  | { type: "store"; kind: "optimistic" | "confirmed" | "revalidated" | "rollback"; instanceId: string;
      binding: string | null; bucket: string; version: number; pending: boolean }
  | { type: "assets"; instanceId: string; binding: string | null; bucket: string; version: number; count: number }
  | { type: "mount" | "unmount" | "handshake"; instanceId: string }
  | { type: "config"; instanceId: string; config: Record<string, unknown> }
  | { type: "protocolError"; instanceId: string; code: ErrorCode; message: string }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; instanceId: string; message: string; data?: unknown };
"#;
