# GitOps on the kind cluster: Flux (source-controller + helm-controller, built from their Go
# modules) reconciles the chart from a git server in the cluster that holds this checkout
# (scripts/gitops.sh; deploy/README.md describes the same by hand). Included by the main
# Makefile (VENV, PY). PROFILE=small as for `make up`.
#   make gitops-up PROFILE=small    cluster, images, Flux, git server, push HEAD, wait for Ready
#   make gitops-push                push HEAD again (commits only) and wait until it is deployed
#   make e2e-gitops                 the GitOps test from nothing (tests/e2e_gitops)

GITOPS_SH := bash scripts/gitops.sh

.PHONY: gitops-up
gitops-up: venv ## kind cluster deployed by Flux from an in-cluster git server holding this checkout
	@$(MAKE) -j1 --no-print-directory preflight cluster-create images load
	$(GITOPS_SH) up

.PHONY: gitops-push
gitops-push: venv ## Push HEAD to the in-cluster git server and wait until Flux has deployed it
	$(GITOPS_SH) push

.PHONY: gitops-status
gitops-status: venv ## What Flux reports about the GitRepository, the HelmChart and the HelmRelease
	$(GITOPS_SH) status

.PHONY: e2e-gitops
e2e-gitops: venv docker-engine ## GitOps tier: Flux deploys the chart, a pushed change rolls out, a bad one is refused
	LAKEHOUSE_E2E=1 $(PY) -m pytest -p no:cacheprovider -s -v --durations=0 tests/e2e_gitops
