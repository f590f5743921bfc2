// The bench widget's manifest: one shareable d1-json binding and one r2-assets binding.
export const manifest = {
  id: "bench",
  name: "Bench",
  widgetType: "dynamic",
  storage: {
    bindings: [
      { key: "doc", backend: "d1-json", schemaId: "bench.doc", schemaVersion: 1, label: "Doc", shareable: true },
      {
        key: "files", backend: "r2-assets", schemaId: "bench.files", schemaVersion: 1,
        configKey: "assetBucketId", label: "Files", shareable: true,
      },
    ],
  },
};

/** A realistic widget document (~1 KB of JSON), the same for the bridge and every peer. */
export function sampleValue(i = 0) {
  return {
    title: `Note ${i}`,
    text: "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(12),
    tags: ["alpha", "beta", "gamma"],
    done: false,
    updatedAt: 1_700_000_000_000 + i,
  };
}

/** One record of the 1,000-write comparison (figure 6). */
export function record(i) {
  return { id: `r${i}`, title: `Item ${i}`, done: i % 2 === 0, rank: i, tags: ["a", "b"] };
}
