// What the numbers were measured on: machine, OS, Node, Chromium, package versions, commit.
import os from "node:os";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const tryRun = (cmd, args, cwd) => {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
};
const pkgVersion = (root, name) => {
  try {
    return JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
};

export async function environment(root, browser) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 1e9),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    // Other work on the machine skews tails: the 1-minute load average when the run started.
    loadAverageAtStart: Math.round(os.loadavg()[0] * 100) / 100,
    node: process.version,
    chromium: browser.version(),
    playwright: pkgVersion(root, "@playwright/test"),
    server: process.env.MONODIT_BENCH_SERVER_BUILD ?? "unknown",
    peers: Object.fromEntries(["comlink", "penpal", "idb-keyval", "dexie"].map((n) => [n, pkgVersion(root, n)])),
    commit: tryRun("git", ["rev-parse", "--short", "HEAD"], root),
    rustc: tryRun("rustc", ["--version"], root),
  };
}
