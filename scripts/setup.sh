#!/usr/bin/env bash
# Installs what monodit-bridge needs and skips what is present (safe to run again).
# Sources: rustup, crates.io, Debian packages, the npm registry and PyPI only; nothing from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "Rust is missing: install it with rustup (https://rustup.rs), then run this again."
command -v rustup >/dev/null 2>&1 || die "rustup is missing: install Rust with rustup (https://rustup.rs), then run this again."
command -v node >/dev/null 2>&1 || die "Node.js is missing: install Node.js 20 or newer with npm (e.g. apt-get install nodejs npm), then run this again."
command -v npm >/dev/null 2>&1 || die "npm is missing: install npm (e.g. apt-get install npm), then run this again."

# 1. The wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. Chromium and its driver, from Debian (same version, headless browser tests).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "Chromium is missing and this user cannot install it: run 'apt-get install -y chromium chromium-driver' as root, then run this again."
    SUDO="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "Chromium is missing: install chromium and chromedriver (same version) at /usr/bin, then run this again."
  say "installing chromium and chromium-driver (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# 3. wasm-bindgen CLI at exactly the version Cargo.toml pins (the test runner must match).
want=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$want" ] || die "Cargo.toml does not pin wasm-bindgen exactly (wasm-bindgen = \"=X\")."
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (found '${have:-none}'; takes a few minutes once)"
  # No --locked: the registry lacks one locked transitive version (see TOOLCHAIN notes).
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# 4. wasm-pack (always used with --mode no-install, so it never downloads tools itself).
if ! command -v wasm-pack >/dev/null 2>&1; then
  say "installing wasm-pack (takes a few minutes once)"
  cargo install wasm-pack --locked
fi

# 5. npm packages: binaryen (wasm-opt; Debian's is broken for wasm-bindgen output),
#    @playwright/test (driving Debian's Chromium; never download a browser) and typescript
#    (checks the published typings, tests/types).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
#    wrangler and miniflare (pinned) run the Worker locally (scripts/worker.sh); workerd's
#    binary comes inside the npm package @cloudflare/workerd-linux-64.
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/@playwright/test ] || [ ! -x node_modules/.bin/tsc ] \
   || [ ! -x node_modules/.bin/wrangler ] || [ ! -d node_modules/miniflare ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error
  else npm install --no-audit --no-fund --loglevel=error; fi
fi

# 6. schemathesis (PyPI, pinned) in a project-local virtualenv, for scripts/schemathesis.sh
#    (property-based and stateful checks of server/openapi.yaml against a running server).
SCHEMATHESIS_VERSION=4.32.5
venv=.tools/schemathesis-venv
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)" != "$SCHEMATHESIS_VERSION" ]; then
  command -v python3 >/dev/null 2>&1 || die "Python 3 is missing: install python3 with venv (e.g. apt-get install python3 python3-venv), then run this again."
  say "installing schemathesis $SCHEMATHESIS_VERSION into $venv (PyPI)"
  python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv, then run this again."
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# 7. worker-build (crates.io), which builds the Cloudflare Worker (scripts/worker-build.sh
#    points it at the wasm-bindgen, wasm-opt and esbuild above, so it downloads nothing).
#    A debug build of the tool: ~80 s instead of 7 min, and it only drives other tools.
WORKER_BUILD_VERSION=0.8.7
if [ "$(worker-build --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (takes a minute or two once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --debug --force
fi

say "ready: $(rustc --version | cut -d' ' -f1-2), wasm-bindgen $want, $(wasm-pack --version), $(/usr/bin/chromium --version 2>/dev/null | head -n1), node $(node --version), schemathesis $SCHEMATHESIS_VERSION, worker-build $WORKER_BUILD_VERSION"
