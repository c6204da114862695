# Images tier: Docker for the tests, the one base, and every image run as the chart runs it.
# Included by the main Makefile (VENV, PY). `make images` itself lives in mk/cluster.mk (the
# laptop path); both build through `python -m images build` (images/build.py).
#   make test-images CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt    behind a TLS-inspecting proxy

DOCKER_ENGINE := bash scripts/docker/engine.sh

.PHONY: docker-engine
docker-engine: ## Use the Docker that answers, else install and start Debian's dockerd (root)
	$(DOCKER_ENGINE) up

.PHONY: base-image
base-image: docker-engine ## Build the debootstrap base lakehouse/base:<suite>-<snapshot> (no registry needed)
	bash images/base/build.sh

.PHONY: test-images
test-images: venv docker-engine ## Images tier: build every image, run each as the chart does
	$(PY) -m images build
	LAKEHOUSE_REQUIRE_DOCKER=1 $(PY) -m pytest --durations=10 tests/images/smoke
