# Cluster e2e tier: a real kind cluster from nothing, one DAG run, checked from outside
# (tests/e2e). Included by the main Makefile (VENV, PY). Not part of `make test`: cold it takes
# over an hour on 2 cores (node image and every image built), warm about half an hour.
#   make e2e                 Docker -> node image -> make up PROFILE=small -> make run -> checks
#   make e2e E2E_KEEP=1      keep the cluster afterwards (`make down` removes it)

.PHONY: e2e
e2e: venv docker-engine e2e-browser ## Cluster tier: kind, every image, one DAG run checked from outside (an hour+ cold)
	LAKEHOUSE_E2E=1 $(PY) -m pytest -p no:cacheprovider -s -v --durations=0 tests/e2e

.PHONY: e2e-browser
e2e-browser: ## Debian's chromium for the e2e UI checks (installed as root if missing)
	@command -v chromium >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] || { echo "error: chromium is missing: install it (Debian: apt-get install chromium) or run as root" >&2; exit 1; }; \
	  echo "==> e2e: installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
