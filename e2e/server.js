// A monodit-server of a spec's own, for specs that stop the backend and bring it back on the
// same port and database (the dashboard keeps its URL): started and stopped by PID only,
// bound to 127.0.0.1, every wait bounded. Uses the binary scripts/e2e.sh has just built.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(process.env.CARGO_TARGET_DIR ?? "target", "debug", "monodit-server");
const staticDir = resolve(process.env.MONODIT_E2E_STATIC ?? "www");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A server on a temporary database; `url` stays the same across `stop()` / `start()`. */
export class RestartableServer {
  constructor() {
    this.work = mkdtempSync(join(tmpdir(), "monodit-e2e-restart-"));
    this.child = null;
    this.url = null;
  }

  /** Starts it (first on a free port, later on the same one) and waits until it answers. */
  async start() {
    const ready = join(this.work, "ready");
    rmSync(ready, { force: true });
    const port = this.url ? new URL(this.url).port : "0";
    const args = ["serve", "--dev", "--bind", "127.0.0.1", "--port", port,
      "--db", join(this.work, "monodit.sqlite"), "--objects", join(this.work, "objects"),
      "--ready-file", ready, "--static", staticDir];
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "inherit"] });
    this.child = child;
    let exited = false;
    child.once("exit", () => { exited = true; });
    for (let i = 0; i < 300; i++) {
      if (exited) throw new Error(`monodit-server exited during start-up (${bin})`);
      if (existsSync(ready) && readFileSync(ready, "utf8").trim()) {
        const url = readFileSync(ready, "utf8").trim();
        try {
          if ((await fetch(`${url}/v1/health`)).ok) {
            this.url = url;
            return url;
          }
        } catch {
          // not answering yet
        }
      }
      await sleep(100);
    }
    throw new Error("monodit-server did not answer within 30 s");
  }

  /** Stops it by PID (TERM, then KILL after 5 s) and waits until it has exited. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGTERM");
    const killed = await Promise.race([gone.then(() => true), sleep(5000).then(() => false)]);
    if (!killed) {
      process.kill(child.pid, "SIGKILL");
      await gone;
    }
  }

  /** Stops it and removes its database. */
  async dispose() {
    await this.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
}
