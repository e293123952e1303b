# Every target sets itself up on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: setup browser services cluster-up cluster-down run test test-fast lint format validate dev bench clean

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(INSTALLED)

browser:  ## Debian's Chromium for the UI tests (apt; nothing to do when /usr/bin/chromium exists)
	bash .ci/install_browser.sh

services:  ## Debian's PostgreSQL and Redis for the local cluster and its test (apt; nothing to do when installed)
	bash .ci/install_services.sh

cluster-up: setup services  ## PostgreSQL, Redis and two Celery workers on 127.0.0.1 writing a DuckLake (data/cluster)
	$(BIN)/custpipe cluster up

cluster-down: setup  ## stop what cluster-up started, by PID
	$(BIN)/custpipe cluster down

run: setup  ## the main job: every asset, week and check into data/warehouse.duckdb
	$(BIN)/custpipe run

test: setup browser services lint validate  ## lint, definitions validation, then the whole suite (2 workers), UI tests in a real browser included
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup  ## the tests not marked ui or slow: pure transforms, readers, checks (under a minute)
	$(BIN)/python -m pytest -n 2 -m "not ui and not slow"

lint: setup  ## ruff: lint rules and formatting (pyproject.toml [tool.ruff])
	$(BIN)/ruff check custpipe_assets custpipe_assets_tests benchmarks
	$(BIN)/ruff format --check custpipe_assets custpipe_assets_tests benchmarks

format: setup  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix custpipe_assets custpipe_assets_tests benchmarks
	$(BIN)/ruff format custpipe_assets custpipe_assets_tests benchmarks

validate: setup  ## Dagster loads the code location the way `dagster dev` does
	$(BIN)/python -c "from custpipe_assets.run import ensure_dagster_home; ensure_dagster_home()"
	$(BIN)/dagster definitions validate -w workspace.yaml

dev: setup  ## the Dagster UI on http://127.0.0.1:3000 over the same instance `make run` records into
	$(BIN)/python -c "from custpipe_assets.run import ensure_dagster_home; ensure_dagster_home()"
	DAGSTER_EVENT_BATCH_SIZE=1000 $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup services  ## the benchmarks (see README): weekly counts, segmentation, product views + CTR API, cluster
	$(BIN)/python benchmarks/weekly_counts.py --scale medium
	$(BIN)/python benchmarks/segmentation.py
	$(BIN)/python benchmarks/ctr_api.py
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/cluster.py

clean:
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/dagster_home data/reports data/serving
