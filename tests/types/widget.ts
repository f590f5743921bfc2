// A widget written from the README (For widget authors: ctx.store, ctx.assets, ctx.cache,
// ctx.storage, ctx.kv, ctx.log), type-checked against pkg/widget's typings. The
// `@ts-expect-error` lines fail the check if the typings ever loosen to `any`.
import init, { connect, type PluginContext, type StoreMeta, type MonoditError, type StoreConflict } from "../../pkg/widget/monodit_bridge.js";

await init();
const ctx = await connect();

// ctx.store: one JSON document per bucket.
await ctx.store.set({ text: "Hello world" });
const value = await ctx.store.get();
const written = await ctx.store.set({ text: "again" }, "explicit-name");
const version: number = written.version;
// No lost update: a conditional write and a read-modify-write that retries on CONFLICT.
try {
  await ctx.store.set({ text: "only if unchanged" }, { ifVersion: version });
} catch (err) {
  const e = err as MonoditError;
  if (e.code === "CONFLICT") {
    const current = e.data as StoreConflict;
    console.log(current.value, current.version);
  }
}
await ctx.store.set({ text: "elsewhere" }, { namespace: "explicit-name", ifVersion: 0 });
const updated = await ctx.store.update((current: { items?: string[] } | null) => ({
  items: [...(current?.items ?? []), "milk"],
}));
const updatedVersion: number = updated.version;
await ctx.store.update(async (current) => current, "explicit-name");
// @ts-expect-error ifVersion is a number
await ctx.store.set({}, { ifVersion: "3" });
console.log(updatedVersion);
function renderDocument(doc: unknown, meta?: StoreMeta) {
  console.log(doc, meta?.kind, meta?.version, meta?.pending, meta?.bucket);
}
const unsubscribe = ctx.store.subscribe(null, renderDocument);
unsubscribe();
ctx.store.subscribe(null, (_v, meta) => {
  // @ts-expect-error meta.kind is the four event kinds, not any string
  const wrong: "changed" = meta.kind;
  console.log(wrong);
});

// ctx.assets, with the README's QUOTA_EXCEEDED check.
const file = new File(["hello"], "hello.txt", { type: "text/plain" });
try {
  const url: string = await ctx.assets.upload(file, { onProgress: (loaded, total) => console.log(loaded / total) });
  console.log(url);
} catch (err) {
  if ((err as Error).message === "QUOTA_EXCEEDED") console.log("Storage full");
  if ((err as MonoditError).code === "FILE_UNREADABLE") console.log("Pick the file again");
  const code = (err as MonoditError).code;
  // @ts-expect-error codes are a closed union
  const bad: typeof code = "NOT_A_CODE";
  console.log(bad);
}
const assets = await ctx.assets.list();
await ctx.assets.delete(assets[0].objectKey);
let unbind: (() => void) | null = null;
function bindBucket() {
  if (unbind) unbind();
  unbind = ctx.assets.subscribe((list, meta) => console.log(list.length, meta.version));
}
ctx.onConfigChange(() => bindBucket());

// ctx.cache: browser only, per instance.
await ctx.cache.set("draft", { text: "x" }, { ttlMs: 60_000 });
const keys: string[] = await ctx.cache.keys();

// ctx.storage: declared collections, typed data.
interface Submission { formId: string; email: string; status: string; createdAt: string }
const { submissions } = ctx.storage;
await submissions.put("sub_123", {
  formId: "contact",
  email: "user@example.com",
  status: "pending",
  createdAt: new Date().toISOString(),
});
const item = (await submissions.get("sub_123")) as Submission | null;
ctx.log.info("Stored submission", { id: item?.formId });
const result = await ctx.storage.submissions.query({
  where: { formId: "contact", status: "pending" },
  orderBy: { createdAt: "desc" },
  limit: 20,
});
const more: boolean = result.hasMore;
// @ts-expect-error where values are strings, numbers, booleans or operator objects
await submissions.count({ status: null });

async function getAllSubmissions(ctx: PluginContext) {
  const all: Array<{ id: string; data: unknown }> = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.storage.submissions.query({ orderBy: { createdAt: "desc" }, limit: 100, cursor });
    all.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return all;
}
const total: number = await ctx.storage.submissions.count();
const pending: number = await ctx.storage.submissions.count({ status: "pending" });
const many: Map<string, unknown> = await submissions.getMany(["a", "b"]);
await submissions.putMany([{ id: "a", data: {} }]);
const deleted: number = await submissions.deleteMany(["a"]);

// ctx.kv: settings and internal state under the settings: and state: prefixes.
await ctx.kv.set("settings:filter", "pending");
const filter = await ctx.kv.get<string>("settings:filter");
const state = await ctx.kv.list("state:");

console.log(value, version, keys, more, total, pending, many, deleted, filter, state, await getAllSubmissions(ctx));
console.log(ctx.instanceId, ctx.config);
