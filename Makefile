# IoT lakehouse: one Makefile for the embedded demo, the tests, the kind cluster and GitOps.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables

include versions.env

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS ?= --all-extras

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on this machine), Python
# would otherwise compile MLflow, scikit-learn, pandas and PySpark from source in every process,
# seconds each time. The stamp's name changed with the flag, so an older venv is compiled once.
$(VENV)/.synced-compiled: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode $(EXTRAS)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced-compiled ## Create the virtual environment from the lock file

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after editing pyproject.toml
	$(UV) lock

.PHONY: demo
demo: venv ## Run the whole pipeline on embedded defaults and print the summary
	$(VENV)/bin/lakehouse demo

.PHONY: test
test: venv lint tools-helm tools-helm-docs tools-checkov tools-kubectl chart-deps ## Run every test tier this machine can run, from nothing
	$(PY) -m pytest --ignore=tests/services --ignore=tests/images/smoke --ignore=tests/e2e --ignore=tests/e2e_gitops
	$(MAKE) --no-print-directory test-services
	$(MAKE) --no-print-directory test-images

.PHONY: lint
lint: venv ## Ruff lint and format check; hadolint on images/*/Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint --config images/.hadolint.yaml images/*/Dockerfile

.PHONY: bench
bench: venv ## Benchmark bronze -> silver -> gold against DuckDB (EVENTS=1000000 per day, DAYS=2; SCALE=300000,1000000,... for the scale curve)
	$(PY) bench/pipeline.py --events $${EVENTS:-1000000} --days $${DAYS:-2} $${SCALE:+--scale $$SCALE}

include mk/charts.mk
include mk/dags.mk
include mk/services.mk
include mk/cluster.mk
include mk/images.mk
include mk/e2e.mk
include mk/gitops.mk

.PHONY: clean
clean: ## Remove local state (.lakehouse) and caches; keeps the venv
	rm -rf .lakehouse .pytest_cache .ruff_cache spark-warehouse
