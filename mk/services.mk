# Services tier: the pipeline against real servers on 127.0.0.1 (SeaweedFS S3, PostgreSQL with the
# Iceberg JDBC catalog, MLflow server). Included by the main Makefile (`include mk/services.mk`),
# which defines VENV and PY. Versions: versions.env.
# The recipes live in services/services.sh, so pytest and CI run the same steps.

SERVICES := services/services.sh
# State (data, logs, ports, generated credentials) of the running services.
LAKEHOUSE_SERVICES_DIR ?= /tmp/lakehouse-services
export LAKEHOUSE_SERVICES_DIR

.PHONY: services-up
services-up: venv ## Install (once) and start S3, PostgreSQL, MLflow on 127.0.0.1
	@: the profile holds generated credentials, so it is only printed by services-env
	PY=$(PY) bash $(SERVICES) up >/dev/null
	@echo 'Services up. Load their settings with: eval "$$(make -s services-env)"' 

.PHONY: services-down
services-down: ## Stop the services and delete their state folder
	PY=$(PY) bash $(SERVICES) down

.PHONY: services-env
services-env: ## Print the services profile, for: eval "$(make -s services-env)"
	@bash $(SERVICES) env

.PHONY: test-services
test-services: venv ## Services tier: start the servers, run tests/services, stop them
	PY=$(PY) bash $(SERVICES) up >/dev/null
	status=0; $(PY) -m pytest --durations=8 tests/services || status=$$?; \
	PY=$(PY) bash $(SERVICES) down; exit $$status
