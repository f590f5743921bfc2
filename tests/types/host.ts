// A host platform written from the README, type-checked against pkg/host's typings.
import init, { Host, type HostEvent } from "../../pkg/host/monodit_bridge.js";

await init();
const host = await Host.create({ backendUrl: "https://storage.example.com", token: "t" });
await Host.create({ backendUrl: "https://storage.example.com", token: "t", resumableUploadBytes: 64 * 1024 * 1024 });
// @ts-expect-error the resumable threshold is a number of bytes
await Host.create({ backendUrl: "https://storage.example.com", token: "t", resumableUploadBytes: "64MB" });
const iframe = document.createElement("iframe");
iframe.setAttribute("sandbox", "allow-scripts");
const manifest = { widgetType: "dynamic", storage: { bindings: [{ key: "primary", backend: "d1-json", schemaId: "notes.plaintext", schemaVersion: 1 }] } };
const handle = await host.mount(iframe, { instanceId: "w-1", kind: "widget", manifest, config: {} });
await host.mount(document.createElement("iframe"), { instanceId: "w-2", manifest, source: "acme/notes" });
await handle.setConfig({ storageNamespace: "team-notes" });
// setConfig replaces the whole config: re-link one binding by changing one key of it.
await handle.setConfig({ ...handle.config, assetBucketId: "team-photos" });
const off = host.onEvent((e: HostEvent) => {
  if (e.type === "store") console.log(e.kind, e.instanceId);
  if (e.type === "log") console.log(e.level, e.message);
});
const { buckets, usage } = await host.topology();
await host.relink("w-2", "primary", "team-notes");
await host.deleteBucket("d1-json", "team");
// @ts-expect-error only the two backends exist
await host.deleteBucket("s3", "team");
handle.unmount();
await host.removeInstance("w-1");
for (const p of await host.plugins()) console.log(p.pluginId, p.source, p.instances.length, p.items + p.kvKeys);
const { refundedBytes, released }: { refundedBytes: number; released: boolean } = await host.deletePluginData("forms");
console.log(refundedBytes, released);
console.log(buckets, usage, off);
