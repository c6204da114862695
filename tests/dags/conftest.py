"""Fixtures of the DAG tier: the DAG folder parsed by Airflow's own DagBag, the renderers of
dag_tools and the SparkApplication CRD of the pinned operator chart."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from cluster_contract import worker_env

# dag_tools configures Airflow through the environment: import it before Airflow.
from dag_tools import (
    CHART_TOOLS,
    CRD_FILE,
    DAGS,
    render_pod,
    render_spark_application,
)

pytest.importorskip("airflow.sdk", reason="Airflow missing: sync the airflow extra (mk/dags.mk)")


def pytest_configure(config: pytest.Config) -> None:
    # Airflow's own .airflowignore parsing uses a pattern class pathspec deprecates.
    config.addinivalue_line("filterwarnings", "ignore:GitWildMatchPattern:DeprecationWarning")


@pytest.fixture(scope="session")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), include_examples=False)


@pytest.fixture(scope="session")
def end_to_end(dagbag: Any) -> Any:
    return dagbag.dags["lakehouse_end_to_end"]


@pytest.fixture(scope="session")
def maintenance(dagbag: Any) -> Any:
    return dagbag.dags["lakehouse_maintenance"]


@pytest.fixture(scope="module", autouse=True)
def cluster_env() -> Any:
    """Every DAG test module renders as a worker of the chart's default install does: its
    settings ConfigMap and pipeline contract, nothing from the caller's environment. Module
    scope: the environment is restored after each module, so it never leaks into other tiers."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("LAKEHOUSE_", "MLFLOW_", "AWS_")):
                mp.delenv(key)
        env = worker_env()
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def render_spark() -> Callable[..., dict[str, Any]]:
    return render_spark_application


@pytest.fixture(scope="session")
def render_stage_pod() -> Callable[..., dict[str, Any]]:
    return render_pod


@pytest.fixture(scope="session")
def sparkapplication_crd() -> dict[str, Any]:
    """The SparkApplication CRD of the pinned operator chart (charts/.build, `make chart-deps`)."""
    import yaml

    if not CRD_FILE.exists():
        proc = subprocess.run(
            ["bash", str(CHART_TOOLS), "deps"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            pytest.skip(f"the spark-operator chart cannot be assembled here:\n{proc.stderr}")
    return yaml.safe_load(CRD_FILE.read_text())
