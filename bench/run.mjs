// The bench driver: runs every figure against the server at MONODIT_BENCH_URL (started by
// scripts/bench.sh) in headless Debian Chromium, then prints a table and writes
// bench/results.json and bench/RESULTS.md. `node bench/run.mjs rpc sizes` runs a subset.
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import os from "node:os";
import { launch } from "./lib/browser.mjs";
import { environment } from "./lib/environment.mjs";
import { evaluateTargets, renderTable, renderMarkdown } from "./lib/report.mjs";
import { advise, observe } from "./lib/advice.mjs";
import * as rpc from "./measures/rpc.mjs";
import * as propagation from "./measures/propagation.mjs";
import * as revalidation from "./measures/revalidation.mjs";
import * as upload from "./measures/upload.mjs";
import * as sizes from "./measures/sizes.mjs";
import * as bulk from "./measures/bulk.mjs";
import * as server from "./measures/server.mjs";
import * as worker from "./measures/worker.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const baseUrl = process.env.MONODIT_BENCH_URL;
if (!baseUrl && process.argv[2] !== "--render") {
  console.error("MONODIT_BENCH_URL is not set: run `bash scripts/bench.sh`.");
  process.exit(2);
}

// Each figure is bounded in time; a failed or stuck figure is reported, the rest still run.
const FIGURES = [
  ["sizes", sizes, 30_000],
  ["rpc", rpc, 120_000],
  ["propagation", propagation, 90_000],
  ["bulk", bulk, 150_000],
  ["upload", upload, 300_000],
  ["revalidation", revalidation, 330_000],
  ["server", server, 90_000],
  ["worker", worker, 120_000],
];
const only = process.argv.slice(2);

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name} took over ${ms / 1000} s`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

// `node bench/run.mjs --render`: rebuild RESULTS.md from results.json (same measurements,
// current report and advice code), without running anything.
if (process.argv[2] === "--render") {
  const results = JSON.parse(readFileSync(join(root, "bench/results.json"), "utf8"));
  results.targets = evaluateTargets(results.figures);
  results.analysis = advise(results.figures, results.targets);
  results.observations = observe(results.figures);
  writeFileSync(join(root, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "bench/RESULTS.md"), renderMarkdown(results, renderTable(results)));
  console.log("[bench] re-rendered bench/RESULTS.md (and the verdicts in results.json) from bench/results.json");
  process.exit(0);
}

const browser = await launch();
const results = { date: new Date().toISOString(), environment: await environment(root, browser), figures: {}, errors: {} };
try {
  for (const [name, mod, ms] of FIGURES) {
    if (only.length && !only.includes(name)) continue;
    const t = Date.now();
    console.log(`[bench] ${name} …`);
    try {
      results.figures[name] = await withTimeout(
        mod.run({ browser, baseUrl, root, log: (s) => console.log(s) }),
        ms,
        name,
      );
      console.log(`[bench] ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    } catch (err) {
      results.errors[name] = String(err?.stack ?? err);
      console.error(`[bench] ${name} FAILED: ${err?.message ?? err}`);
    }
  }
} finally {
  await browser.close();
}

// The backend issue's own server bench (bench/server-bench.sh), when it has been run: shown
// next to figure 7 so both measurements of the server are in one report.
const serverBench = join(root, "bench/server-results.md");
if (existsSync(serverBench)) results.serverBenchReport = readFileSync(serverBench, "utf8");
results.loadAverageAtEnd = Math.round(os.loadavg()[0] * 100) / 100;
results.targets = evaluateTargets(results.figures);
results.analysis = advise(results.figures, results.targets);
results.observations = observe(results.figures);
const table = renderTable(results);
console.log(`\n${table}`);
if (!only.length || process.env.MONODIT_BENCH_WRITE === "1") {
  writeFileSync(join(root, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "bench/RESULTS.md"), renderMarkdown(results, table));
  console.log("[bench] wrote bench/results.json and bench/RESULTS.md");
}
process.exit(Object.keys(results.errors).length ? 1 : 0);
