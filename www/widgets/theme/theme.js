// A Dynamic Theme (mounted with kind "theme"): it keeps its palette in a d1-json document
// under an explicit, stable namespace, so it is the same bucket whatever instance id or
// config the host gives it. Themes do not appear in the topology panel.
import { start, explain, status } from "../shared/bridge.js";

const NAMESPACE = "aurora-theme-palette";
const ACCENTS = {
  Indigo: "#3657d6",
  Teal: "#0f8b8d",
  Plum: "#8e3b8e",
  Amber: "#b86e00",
  Slate: "#44516a",
};

const swatches = document.getElementById("swatches");
const preview = document.getElementById("preview");
const statusEl = document.getElementById("status");

let ctx;
try {
  ctx = await start();
} catch (err) {
  status(statusEl, explain(err), "error");
  throw err;
}

function render(value) {
  const accent = value?.accent ?? ACCENTS.Indigo;
  document.documentElement.style.setProperty("--accent", accent);
  preview.style.background = `linear-gradient(90deg, ${accent}, #ffffff)`;
  for (const button of swatches.children) {
    button.setAttribute("aria-pressed", String(button.dataset.accent === accent));
  }
}

for (const [name, accent] of Object.entries(ACCENTS)) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "swatch";
  button.style.background = accent;
  button.dataset.accent = accent;
  button.title = name;
  button.setAttribute("aria-label", name);
  button.addEventListener("click", async () => {
    try {
      await ctx.store.set({ accent, name, updatedAt: Date.now() }, NAMESPACE);
      status(statusEl, `${name} saved`, "ok");
    } catch (err) {
      status(statusEl, explain(err), "error");
    }
  });
  swatches.append(button);
}

ctx.store.subscribe(NAMESPACE, render);
try {
  render(await ctx.store.get(NAMESPACE));
} catch (err) {
  status(statusEl, explain(err), "error");
}
