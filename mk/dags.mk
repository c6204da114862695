# Airflow DAG targets; included by the main Makefile (`include mk/dags.mk`), which defines VENV,
# PY and the venv target. Airflow and the cncf-kubernetes provider are the `airflow` extra of the
# one lock file: they resolve together with spark, ml and dev, so `make venv` (--all-extras)
# installs them into the same .venv and no second environment is needed.

.PHONY: test-dags
test-dags: venv chart-deps ## DAG tier: import, task graph, SparkApplications vs the CRD, pods vs Kubernetes
	$(PY) -m pytest tests/dags
