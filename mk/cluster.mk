# The laptop cluster (kind); included by the main Makefile (`include mk/cluster.mk`), which
# includes versions.env (KIND_VERSION, KIND_NODE_IMAGE, KUBERNETES_VERSION, HELM_VERSION, ...).
# The recipes live in scripts/cluster.sh (one subcommand per target), so each step can also be
# run by hand. kind, kubectl and helm are built pinned into .tools/bin with the Go toolchain.
#
# Every cluster target checks Docker first and fails within a second without it. Versions and
# settings are overridden on the command line, which make exports to the script:
#   make up KIND_VERSION=0.31.0 KIND_NODE_IMAGE=kindest/node:v1.35.0@sha256:...
#   make up CLUSTER_NAME=lh2 MIN_MEMORY_GIB=6      make ingest DAY=2026-01-05
#   make images CLUSTER_IMAGES="jupyter"           make logs COMPONENT=mlflow TAIL=500
#
# Where no registry serves KIND_NODE_IMAGE, cluster-create uses the node image `make node-image`
# builds from the Go module proxy and Debian (scripts/node-image.sh; cached, then seconds).

CLUSTER_SH := bash scripts/cluster.sh

.PHONY: kind-up
kind-up: ## Laptop cluster from nothing: preflight, kind cluster, images, load, deploy, watchdog
	@$(MAKE) -j1 --no-print-directory preflight cluster-create images load deploy watch

.PHONY: up
up: kind-up ## Alias of kind-up

.PHONY: preflight
preflight: ## Check Docker (running, memory, CPUs) and build the pinned kind, kubectl, helm
	$(CLUSTER_SH) preflight

.PHONY: tools-kubectl
tools-kubectl: ## Build the pinned kubectl into .tools/bin with the Go toolchain (idempotent)
	$(CLUSTER_SH) kubectl

.PHONY: cluster-create
cluster-create: ## Create the kind cluster from kind-config.yaml unless it exists
	$(CLUSTER_SH) create

.PHONY: node-image
node-image: ## kind node image from package registries only (Go module proxy, Debian), cached as a zstd tar
	bash scripts/node-image.sh

.PHONY: images
images: ## Build the images from the one base (CLUSTER_IMAGES="spark python"; CA_BUNDLE=<pem> behind a proxy)
	$(CLUSTER_SH) images

.PHONY: load
load: ## kind load the project images into the cluster node
	$(CLUSTER_SH) load

.PHONY: deploy
deploy: ## helm upgrade --install the chart with values-kind.yaml, watched for stuck pods
	$(CLUSTER_SH) deploy

.PHONY: watch
watch: ## Watchdog: fail naming any pod stuck (ImagePullBackOff, CrashLoop, Pending); UI commands
	$(CLUSTER_SH) watch

.PHONY: kind-down
kind-down: ## Delete the kind cluster (its volumes go with it)
	$(CLUSTER_SH) down

.PHONY: down
down: kind-down ## Alias of kind-down

.PHONY: setup
setup: ## up, then ingest one day of raw events
	@$(MAKE) -j1 --no-print-directory kind-up ingest

.PHONY: ingest
ingest: venv ## Run the ingest stage as a Job in the cluster (DAY=YYYY-MM-DD, default: yesterday)
	$(CLUSTER_SH) ingest

.PHONY: run
run: ## Trigger lakehouse_end_to_end for one interval (DAY=YYYY-MM-DD, default: yesterday) and follow it
	$(CLUSTER_SH) run

.PHONY: status
status: ## Nodes, release, pods, volumes and SparkApplications of the cluster
	$(CLUSTER_SH) status

.PHONY: logs
logs: ## Recent logs of every pod (COMPONENT=<name> for one component, TAIL=<lines>)
	$(CLUSTER_SH) logs

.PHONY: port-forward
port-forward: ## Open Airflow, MLflow, MinIO console, Spark UI on 127.0.0.1; print credentials
	$(CLUSTER_SH) port-forward

.PHONY: clean-cluster
clean-cluster: ## Uninstall, delete the PVCs and the kind cluster, remove .cluster/
	$(CLUSTER_SH) clean

# `make clean` also removes the cluster; without Docker it only says there is none to delete.
clean: clean-cluster
