#!/usr/bin/env bash
# Builds frontend-example/dist when Node is available and the sources changed since the last build.
set -euo pipefail
cd "$(dirname "$0")/../frontend-example"
if [ ! -f package.json ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "frontend: npm not found; install Node.js 20+ and run 'make frontend' to build the web UI" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
newest_src=$(find src index.html playground.html vite.config.ts package.json -newer dist/index.html 2>/dev/null | head -n1 || true)
if [ ! -f dist/index.html ] || [ -n "$newest_src" ]; then
  npm run build --silent
fi
