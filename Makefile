# effortpulse — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DURATION ?=

.PHONY: help venv up down test unit lint demo bench prometheus

help:
	@echo "make demo        the main job, live: services + worker + simulated contact centre + terminal view"
	@echo "                 (make demo DURATION=60 stops by itself after 60 s and prints a summary)"
	@echo "make test        start Kafka and Redis if needed, install into .venv, run the whole suite"
	@echo "make up / down   start / stop the local Kafka broker and Redis (only what make up started)"
	@echo "make unit        the pure-core tests only (no services)"
	@echo "make prometheus  install Prometheus and promtool (Debian's package, as root) if missing; make test does"
	@echo "make bench       the benchmarks under tests/perf (not part of make test)"

# .venv with the project installed; redone when pyproject.toml changes
$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "effortpulse needs Python 3.11 or newer: make PYTHON=python3.11 ...")'
	@echo "[effortpulse] installing the project into $(VENV)/"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

up: venv
	@deploy/local/up.sh

down:
	@deploy/local/down.sh

lint: venv
	$(BIN)/ruff check streams schemas tests
	$(BIN)/ruff format --check streams schemas tests

unit: venv
	$(BIN)/pytest tests/unit -q

# Debian's prometheus package (server + promtool) for tests/integration/test_prometheus.py
prometheus:
	@deploy/local/prometheus.sh

test: up prometheus lint
	$(BIN)/pytest -q

# its own app id, topics and port; Ctrl-C (or DURATION seconds after it goes live) stops it,
# prints a summary and deletes its Redis keys and topics
demo: up
	@$(BIN)/effortpulse demo$(if $(DURATION), --duration $(DURATION))

bench: up
	$(BIN)/python -m tests.perf.bench
