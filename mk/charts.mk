# Helm chart targets; included by the main Makefile (`include mk/charts.mk`), which defines VENV,
# PY and UV and includes versions.env (HELM_VERSION, SPARK_OPERATOR_*, KUBERNETES_VERSION,
# CHECKOV_VERSION).
# The recipes live in charts/scripts/chart-tools.sh so pytest can run the same steps.

CHART_TOOLS := charts/scripts/chart-tools.sh
CHART_BUILD := charts/.build/lakehouse

.PHONY: tools-helm
tools-helm: ## Build the pinned helm into .tools/bin with the Go toolchain (idempotent)
	bash $(CHART_TOOLS) helm

.PHONY: tools-helm-docs
tools-helm-docs: ## Build the pinned helm-docs into .tools/bin with the Go toolchain (idempotent)
	bash $(CHART_TOOLS) helm-docs

.PHONY: tools-checkov
tools-checkov: | $(UV) ## Install the pinned checkov into .tools/checkov, its own environment (idempotent)
	UV=$(UV) bash $(CHART_TOOLS) checkov

.PHONY: chart-deps
chart-deps: ## Assemble charts/.build/lakehouse with the pinned spark-operator chart (Go module)
	bash $(CHART_TOOLS) deps

.PHONY: test-manifests
test-manifests: venv tools-helm tools-helm-docs tools-checkov chart-deps ## Lint, render, validate and police the Helm chart
	$(PY) -m pytest tests/manifests

.PHONY: chart-docs
chart-docs: ## Regenerate charts/lakehouse/README.md (README.md.gotmpl + the values table of values.yaml)
	bash $(CHART_TOOLS) docs

.PHONY: footprint
footprint: venv tools-helm chart-deps ## Sum the requests of the rendered pods per component
	$(PY) tests/manifests/footprint.py
