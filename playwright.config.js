// Playwright drives the demo dashboard in Debian's Chromium (never a downloaded browser).
// scripts/e2e.sh starts the real monodit-server and passes its URL in MONODIT_E2E_URL.
import { defineConfig } from "@playwright/test";

const baseURL = process.env.MONODIT_E2E_URL;
if (!baseURL) throw new Error("MONODIT_E2E_URL is not set: run the specs through scripts/e2e.sh");

export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results",
  timeout: 90_000,
  expect: { timeout: 20_000 },
  // Every test creates its own demo user (a fresh browser context has no saved token).
  fullyParallel: true,
  workers: 2,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    browserName: "chromium",
    viewport: { width: 1440, height: 1000 },
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
      ],
    },
  },
});
