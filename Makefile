# reelsearch: `make demo` and `make test` set up everything they need on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_CACHE_DIR ?= $(HOME)/.cache/pip

DEBIAN_PACKAGES := ffmpeg espeak-ng redis-server
DEMO_VAR ?= var

.PHONY: install system-deps demo test test-unit lint services-up services-down bench clean

install: system-deps $(VENV)/.installed

# Debian packages, installed only when a command is missing.
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[dev]"
	@touch $@

demo: install
	$(PY) manage.py migrate -v0
	$(PY) manage.py ingest demo/media --metadata demo/media/catalog.json
	@while IFS= read -r query; do \
	  [ -n "$$query" ] && $(PY) manage.py search "$$query" --k 3; echo; \
	done < demo/queries.txt

lint: install
	$(VENV)/bin/ruff check .

test: install services-up
	@set -o pipefail; status=0; \
	$(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(MAKE) --no-print-directory services-down; \
	exit $$status

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Services the integration tests need (started here, stopped after the run).
services-up:
	@true

services-down:
	@true

bench: install
	$(PY) bench/search_latency.py
	$(PY) bench/ingest_speed.py

clean:
	rm -rf var .pytest_cache .ruff_cache
