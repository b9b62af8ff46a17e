# reelsearch: `make demo` and `make test` set up everything they need on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_CACHE_DIR ?= $(HOME)/.cache/pip

DEBIAN_PACKAGES := ffmpeg espeak-ng redis-server chromium chromium-driver npm
DEMO_VAR ?= var
export REELSEARCH_REDIS_PORT ?= 6390
export REELSEARCH_OPENSEARCH_PORT ?= 9250
export REELSEARCH_POSTGRES_PORT ?= 5433
TEST_REDIS_URL := redis://127.0.0.1:$(REELSEARCH_REDIS_PORT)/0
TEST_OPENSEARCH_URL := http://127.0.0.1:$(REELSEARCH_OPENSEARCH_PORT)
# deploy/services postgres-up makes this user and database (a loopback-only test cluster).
TEST_DATABASE_URL := postgresql://reelsearch:reelsearch@127.0.0.1:$(REELSEARCH_POSTGRES_PORT)/reelsearch
# The tests that run a second time with the catalog on PostgreSQL: the catalog, the API and
# the admin, ingest and recovery, and real Celery workers writing status and segments.
POSTGRES_TESTS := tests/integration/test_api.py tests/integration/test_api_visibility.py \
	tests/integration/test_admin.py tests/integration/test_recover.py \
	tests/integration/test_ingest_metadata.py tests/integration/test_concurrent_workers.py \
	tests/unit/test_status_command.py tests/unit/test_prepared_rows.py
export REELSEARCH_CLUSTER_HTTP_PORTS ?= 9261,9262,9263
export REELSEARCH_CLUSTER_TRANSPORT_PORTS ?= 9361,9362,9363
comma := ,
TEST_CLUSTER_URL := http://127.0.0.1:$(firstword $(subst $(comma), ,$(REELSEARCH_CLUSTER_HTTP_PORTS)))

.PHONY: install text-model concept-model node-deps system-deps demo test test-unit lint services-up services-down bench clean

# deploy/settings.py defaults to DEBUG off and then needs DJANGO_SECRET_KEY; the demo and the
# benchmarks run as local development (tests set this in tests/settings.py).
demo bench text-model concept-model: export DJANGO_DEBUG ?= 1

install: system-deps $(VENV)/.installed text-model concept-model node-deps

# axe-core (npm, pinned in package.json; it has no dependencies) for the search page's
# accessibility check in tests/browser; kept when already there.
AXE := node_modules/axe-core/axe.min.js
node-deps: $(AXE)
$(AXE): package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $@

# The text model exported once to ONNX for onnxruntime (into REELSEARCH_TEXT_ONNX_DIR, the
# virtualenv's share/reelsearch by default; kept when already there).
text-model: $(VENV)/.installed
	$(PY) manage.py export_text_model

# The concept classifier exported once to ONNX beside it (kept when already there).
concept-model: $(VENV)/.installed
	$(PY) manage.py export_concept_model

# Debian packages, installed only when a command is missing.
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# timm is installed only for its ImageNet class-name files (read as data, never imported), and
# with --no-deps: its dependencies include torchvision, whose build must match torch exactly.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps "timm==1.0.31"
	@touch $@

demo: install
	$(PY) manage.py migrate -v0
	$(PY) manage.py ingest demo/media --metadata demo/media/catalog.json
	@while IFS= read -r query; do \
	  [ -n "$$query" ] && $(PY) manage.py search "$$query" --k 3; echo; \
	done < demo/queries.txt

lint: install
	$(VENV)/bin/ruff check .

# The services start before the suite and stop after it, whatever happened in between.
test: install
	@set -o pipefail; services=0; \
	$(MAKE) --no-print-directory services-up || services=$$?; \
	status=$$services; \
	if [ $$services = 0 ]; then \
	  REELSEARCH_TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  REELSEARCH_TEST_OPENSEARCH_URL=$(TEST_OPENSEARCH_URL) \
	  REELSEARCH_TEST_CLUSTER_URL=$(TEST_CLUSTER_URL) \
	  $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	fi; \
	if [ $$services = 0 ] && { [ "$${CI:-}" = true ] || deploy/services status | grep '^postgres: up' >/dev/null; }; then \
	  echo "The catalog, API and worker tests again, with the catalog on PostgreSQL:"; \
	  REELSEARCH_TEST_DATABASE_URL=$(TEST_DATABASE_URL) \
	  REELSEARCH_TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  $(PY) -m pytest $(PYTEST_ARGS) $(POSTGRES_TESTS) || status=$$?; \
	fi; \
	$(MAKE) --no-print-directory services-down; \
	exit $$status

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Services the integration tests need (started here, stopped after the run; see deploy/services).
# PostgreSQL (Debian's `postgresql`, a private cluster under .services/) is optional outside
# CI like OpenSearch: without it the second run, on PostgreSQL, is left out.
# OpenSearch (deploy/opensearch/run-node; the first start builds it with Maven) and the 3-node
# cluster of the failover drill (tests marked `cluster`) are optional outside CI: their tests
# then skip. Under CI=true a node or cluster that does not come up fails the run.
services-up:
	@deploy/services redis-up
	@deploy/services postgres-up || case "$${CI:-}" in \
	  1|true|TRUE|True|yes) echo "services: PostgreSQL is required under CI" >&2; exit 1 ;; \
	  *) echo "services: PostgreSQL did not start: the PostgreSQL test run is skipped" >&2 ;; \
	esac
	@deploy/services opensearch-up || case "$${CI:-}" in \
	  1|true|TRUE|True|yes) echo "services: OpenSearch is required under CI" >&2; exit 1 ;; \
	  *) echo "services: OpenSearch did not start: its tests will be skipped" >&2 ;; \
	esac
	@deploy/services cluster-up || case "$${CI:-}" in \
	  1|true|TRUE|True|yes) echo "services: the OpenSearch cluster is required under CI" >&2; exit 1 ;; \
	  *) echo "services: the OpenSearch cluster did not start: its drill will be skipped" >&2 ;; \
	esac

services-down:
	@deploy/services down

bench: install
	$(PY) bench/search_latency.py
	$(PY) bench/ingest_speed.py
	$(PY) bench/worker_throughput.py

clean:
	rm -rf var .pytest_cache .ruff_cache
