// Turns the figures into target verdicts, a plain-text table (stdout) and bench/RESULTS.md.

const KB = 1024;
const ms = (x) => (x == null ? "–" : `${x < 1 ? x.toFixed(3) : x.toFixed(2)} ms`);
const kb = (x) => (x == null ? "–" : `${(x / KB).toFixed(1)} KB`);
const x = (r) => (r == null ? "–" : `${r}×`);

/** Every target of issues 6 and 12, each with what was measured and whether it was met. */
export function evaluateTargets(f) {
  const t = [];
  const add = (figure, target, measured, met) => t.push({ figure, target, measured, met });
  if (f.rpc) {
    add("1 warm get", "≤ 2× Comlink (median)", `${x(f.rpc.warm.ratioMedian)}`, f.rpc.warm.ratioMedian <= 2);
    add("1 cold get", "≤ 1.5× idb-keyval (median)", `${x(f.rpc.cold.ratioMedian)}`, f.rpc.cold.ratioMedian <= 1.5);
    // Issue 12's tighter targets.
    add("1 warm get", "≤ 1.2× Comlink (median)", `${x(f.rpc.warm.ratioMedian)}`, f.rpc.warm.ratioMedian <= 1.2);
    add("1 cold get", "≤ 1.2× Comlink + idb-keyval (median)", `${x(f.rpc.cold.ratioMedianVsComlinkIdbKeyval)}`,
      f.rpc.cold.ratioMedianVsComlinkIdbKeyval <= 1.2);
    if (f.rpc.first) {
      add("1 first get of a mounted widget", "≤ 1.2× Comlink + idb-keyval (median)", `${x(f.rpc.first.ratioMedian)}`,
        f.rpc.first.ratioMedian <= 1.2);
    }
  }
  if (f.propagation) {
    const p = f.propagation.bridge;
    add("2 propagation", "median < 3 ms", ms(p.median), p.median < 3);
    add("2 propagation", "p99 < 16 ms", ms(p.p99), p.p99 < 16);
  }
  if (f.revalidation) {
    const cases = f.revalidation.cases;
    const maxReq = Math.max(...cases.map((c) => c.unchanged.requests));
    const minReq = Math.min(...cases.map((c) => c.unchanged.requests));
    const fulls = Math.max(...cases.map((c) => c.unchanged.fullFetches));
    add("3 revalidation", "1 request for any N, K ≤ 100 (first re-check after mount)", `${minReq}–${maxReq} requests`,
      maxReq === 1 && minReq === 1);
    add("3 revalidation", "0 full fetches when unchanged (first re-check after mount)", `${fulls} max`, fulls === 0);
    const sMax = Math.max(...cases.map((c) => c.steadyUnchanged.requests));
    const sMin = Math.min(...cases.map((c) => c.steadyUnchanged.requests));
    const sFull = Math.max(...cases.map((c) => c.steadyUnchanged.fullFetches));
    add("3 revalidation", "1 request for any N, K ≤ 100 (later re-checks)", `${sMin}–${sMax} requests`, sMax === 1 && sMin === 1);
    add("3 revalidation", "0 full fetches when unchanged (later re-checks)", `${sFull} max`, sFull === 0);
  }
  if (f.upload) {
    add("4 upload", "≥ 0.9× direct throughput", x(f.upload.throughputRatio), f.upload.throughputRatio >= 0.9);
    add("4 upload", "host heap growth < 10% of file",
      `${(f.upload.heapGrowthFractionOfFile * 100).toFixed(2)}%`, f.upload.heapGrowthFractionOfFile < 0.1);
    for (const [backend, b] of Object.entries(f.upload.big ?? {})) {
      add(`4 upload 1 GiB (${backend})`, "host heap growth < 10% of file",
        `${(b.heapGrowthFractionOfFile * 100).toFixed(3)}%`, b.heapGrowthFractionOfFile < 0.1);
    }
  }
  if (f.bulk) {
    add("6 1,000 sets", "1,000th optimistic event ≤ 3× Dexie bulkPut (median)", x(f.bulk.ratioOptimisticVsBulkPut),
      f.bulk.ratioOptimisticVsBulkPut <= 3);
  }
  if (f.sizes) {
    add("5 size", "widget ≤ 20 KB gzip", kb(f.sizes.widget.gzip), f.sizes.widget.gzip <= 20 * KB);
    add("5 size", "host ≤ 150 KB gzip", kb(f.sizes.host.gzip), f.sizes.host.gzip <= 150 * KB);
  }
  return t;
}

function rows(f) {
  const r = [];
  if (f.rpc) {
    r.push(["1 warm get (median / p99)", `${ms(f.rpc.warm.bridge.median)} / ${ms(f.rpc.warm.bridge.p99)}`,
      `Comlink ${ms(f.rpc.warm.comlink.median)} / ${ms(f.rpc.warm.comlink.p99)}`, x(f.rpc.warm.ratioMedian)]);
    r.push(["1 warm get (mean)", ms(f.rpc.warm.bridge.mean), `Comlink ${ms(f.rpc.warm.comlink.mean)}`, x(f.rpc.warm.ratioMean)]);
    r.push(["1 cold get from IndexedDB (median / p99)", `${ms(f.rpc.cold.bridge.median)} / ${ms(f.rpc.cold.bridge.p99)}`,
      `idb-keyval ${ms(f.rpc.cold.idbKeyval.median)} / ${ms(f.rpc.cold.idbKeyval.p99)}`, x(f.rpc.cold.ratioMedian)]);
    if (f.rpc.first) {
      r.push([`1 first get after a reload (${f.rpc.first.widgets} widgets mounted at once)`,
        `${ms(f.rpc.first.bridge.median)} / ${ms(f.rpc.first.bridge.p99)}`,
        `Comlink + idb-keyval ${ms(f.rpc.first.comlinkIdbKeyval.median)} / ${ms(f.rpc.first.comlinkIdbKeyval.p99)}`,
        x(f.rpc.first.ratioMedian)]);
    }
    if (f.rpc.cold.comlinkIdbKeyval) {
      r.push(["1 cold get, same design from peers", `${ms(f.rpc.cold.bridge.median)} / ${ms(f.rpc.cold.bridge.p99)}`,
        `Comlink + idb-keyval ${ms(f.rpc.cold.comlinkIdbKeyval.median)} / ${ms(f.rpc.cold.comlinkIdbKeyval.p99)}`,
        x(f.rpc.cold.ratioMedianVsComlinkIdbKeyval)]);
    }
  }
  if (f.propagation) {
    const p = f.propagation;
    r.push(["2 set A → callback B", `${ms(p.bridge.median)} / ${ms(p.bridge.p99)}`,
      `postMessage relay ${ms(p.postMessageRelay.median)} / ${ms(p.postMessageRelay.p99)}`, x(p.ratioMedian)]);
  }
  if (f.revalidation) {
    for (const c of f.revalidation.cases) {
      r.push([`3 re-check K=${c.k} N=${c.n}`,
        `first: ${c.unchanged.requests} req, ${c.unchanged.bytes} B, ${c.unchanged.fullFetches} full; ` +
          `later: ${c.steadyUnchanged.requests} req, ${c.steadyUnchanged.bytes} B, ${c.steadyUnchanged.fullFetches} full; ` +
          `1 changed: ${c.oneChanged.requests} req, ${c.oneChanged.fullFetches} full`,
        `per-key ${c.perKey.requests} req, ${c.perKey.bytes} B (no dedupe: ${c.perKeyWithoutDedupe.requests})`,
        `${c.perKey.bytes ? (c.steadyUnchanged.bytes / c.perKey.bytes).toFixed(2) : "–"}× bytes (later)`]);
    }
  }
  if (f.upload) {
    const u = f.upload;
    r.push(["4 upload 64 MiB (median)", `${ms(u.bridge.ms.median)} (${u.bridge.mbPerS} MB/s), heap +${kb(u.bridge.heapGrowthMaxBytes)}`,
      `fetch ${ms(u.direct.ms.median)} (${u.direct.mbPerS} MB/s), heap +${kb(u.direct.heapGrowthMaxBytes)}`, `${x(u.throughputRatio)} speed`]);
    for (const [backend, b] of Object.entries(u.big ?? {})) {
      r.push([`4 upload 1 GiB through the bridge, ${backend}`, `${ms(b.ms)} (${b.mbPerS} MB/s), host heap +${kb(b.heapGrowthMaxBytes)}`,
        "–", `${(b.heapGrowthFractionOfFile * 100).toFixed(3)}% of the file`]);
    }
  }
  if (f.sizes) {
    const s = f.sizes;
    const peers = Object.entries(s.peers).map(([n, p]) => `${n} ${kb(p.gzip)}/${kb(p.brotli)}`).join(", ");
    r.push(["5 size widget (gzip/brotli)", `${kb(s.widget.gzip)} / ${kb(s.widget.brotli)}`, peers, "–"]);
    r.push(["5 size host (gzip/brotli)", `${kb(s.host.gzip)} / ${kb(s.host.brotli)}`, "", "–"]);
  }
  if (f.bulk) {
    const b = f.bulk;
    r.push(["6 1,000 sets (median)", `optimistic ${ms(b.bridgeAllOptimistic.median)}, confirmed ${ms(b.bridgeAllConfirmed.median)}`,
      `Dexie bulkPut ${ms(b.dexieBulkPut.median)}, 1,000 put() ${ms(b.dexieSinglePuts.median)}`,
      `${x(b.ratioOptimisticVsBulkPut)} / ${x(b.ratioOptimisticVsSinglePuts)}`]);
  }
  if (f.server) {
    for (const s of f.server.rows ?? []) r.push([`7 server ${s.name}`, s.ours, s.peer ?? "", s.ratio ?? "–"]);
  }
  if (f.worker) {
    for (const s of f.worker.rows ?? []) r.push([`8 ${s.name}`, s.ours, s.peer ?? "", s.ratio ?? "–"]);
  }
  return r;
}

function pad(table) {
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
  return table.map((row) => row.map((c, i) => String(c).padEnd(widths[i])).join(" | ")).join("\n");
}

export function renderTable(results) {
  const head = [["figure", "monodit-bridge", "peer (same run)", "ratio"]];
  const body = rows(results.figures);
  const verdicts = results.targets.map((t) => [`target ${t.figure}`, t.target, t.measured, t.met ? "met" : "MISSED"]);
  const errors = Object.keys(results.errors).map((k) => [`error ${k}`, "did not run to the end", "", "see results.json"]);
  return pad([...head, ...body, ...verdicts, ...errors]);
}

export function renderMarkdown(results, _table) {
  const e = results.environment;
  const md = [];
  const row = (cells) => `| ${cells.map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`;
  md.push("# Benchmark results", "");
  md.push("Generated by `bash scripts/bench.sh` (do not edit by hand; rerun it). Every figure is measured next to");
  md.push("its peer in the same run, same browser, same server. Medians and p99 (nearest rank).", "");
  md.push(`- date: ${results.date}`);
  md.push(`- machine: ${e.cpu}, ${e.cores} cores, ${e.memoryGB} GB, ${e.os}; load average ${e.loadAverageAtStart} at start` +
    (results.loadAverageAtEnd != null ? `, ${results.loadAverageAtEnd} at end` : ""));
  md.push(`- browser: headless Chromium ${e.chromium} (Debian, Playwright ${e.playwright})`);
  md.push(`- node ${e.node}; ${e.rustc ?? ""}; server build: ${e.server}; commit ${e.commit}`);
  md.push(`- peers: ${Object.entries(e.peers).map(([n, v]) => `${n} ${v}`).join(", ")}`, "");
  md.push("## Figures", "");
  md.push(row(["figure", "monodit-bridge", "peer (same run)", "ratio"]), row(["---", "---", "---", "---"]));
  for (const r of rows(results.figures)) md.push(row(r));
  md.push("", "## Targets (issues 6 and 12)", "");
  md.push(row(["figure", "target", "measured", "verdict"]), row(["---", "---", "---", "---"]));
  for (const t of results.targets) md.push(row([t.figure, t.target, t.measured, t.met ? "met" : "**MISSED**"]));
  if (Object.keys(results.errors).length) {
    md.push("", "## Figures that did not complete", "");
    for (const [k, v] of Object.entries(results.errors)) md.push(`- ${k}: \`${v.split("\n")[0]}\``);
  }
  md.push("", "## How each figure is measured", "");
  for (const [k, v] of Object.entries(results.figures)) if (v?.notes) md.push(`- **${k}**: ${v.notes}`);
  if (results.serverBenchReport) {
    md.push("", "## The backend's own server bench (bench/server-results.md, from `bash bench/server-bench.sh`)", "");
    md.push("Recorded separately by that script (Rust load client, opt-level 3), not in this run; shown so both");
    md.push("measurements of the server sit in one report.", "");
    md.push(results.serverBenchReport.replace(/^# .*\n+/, "").trim());
  }
  if (results.analysis) md.push("", "## Missed targets: why, and what would close them", "", results.analysis);
  if (results.observations) md.push("", "## Other observations", "", results.observations);
  md.push("");
  return md.join("\n");
}
