// The dashboard layout: which widgets are mounted, with which manifest, instance id and
// config. Kept in localStorage so a reload mounts the same widgets with the same buckets.

const KEY = "monodit-demo:layout:v1";

/** The example widgets a first visit shows. Instance ids are stable so buckets survive reloads. */
export const DEFAULT_LAYOUT = [
  { instanceId: "notes-a", title: "Notes A", src: "/widgets/notes/index.html", manifestUrl: "/widgets/notes/manifest.json", height: 200 },
  { instanceId: "notes-b", title: "Notes B", src: "/widgets/notes/index.html", manifestUrl: "/widgets/notes/manifest.json", height: 200 },
  { instanceId: "gallery-1", title: "Gallery", src: "/widgets/gallery/index.html", manifestUrl: "/widgets/gallery/manifest.json", height: 250 },
  { instanceId: "mixed-1", title: "Mixed gallery", src: "/widgets/mixed/index.html", manifestUrl: "/widgets/mixed/manifest.json", height: 300 },
  { instanceId: "todo-1", title: "Todo", src: "/widgets/todo/index.html", manifestUrl: "/widgets/todo/manifest.json", height: 250 },
  { instanceId: "forms-1", title: "Forms", src: "/widgets/forms/index.html", manifestUrl: "/widgets/forms/manifest.json", height: 480 },
  { instanceId: "aurora-theme", title: "Aurora theme", kind: "theme", src: "/widgets/theme/index.html", manifestUrl: "/widgets/theme/manifest.json", height: 72 },
].map((w) => ({ kind: "widget", config: {}, ...w }));

export function loadLayout() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY));
    if (Array.isArray(saved)) return saved;
  } catch {
    // A corrupt layout is replaced by the default one below.
  }
  return structuredClone(DEFAULT_LAYOUT);
}

export function saveLayout(layout) {
  localStorage.setItem(KEY, JSON.stringify(layout));
}

export function resetLayout() {
  localStorage.removeItem(KEY);
}
