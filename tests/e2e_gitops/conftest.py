"""The GitOps e2e tier (`make e2e-gitops`): Flux deploys the chart on a real kind cluster from a
git server in the cluster, the DAG runs green once, a pushed change rolls out and a pushed
invalid value is refused with the release left as it was. Checked from outside, through the
Kubernetes API, Flux's status and port-forwards; phases print their time and the JSON summary
goes to .cluster/e2e/gitops-summary.json.

Not part of `make test` (it builds a cluster, every image and the Flux controllers).
`LAKEHOUSE_E2E=1` is set by `make e2e-gitops`; without it every test here is skipped, saying so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_tools import (
    OUT,
    RELEASE,
    STATE,
    Airflow,
    Phases,
    make,
    now,
    port_forward,
    secret_data,
    skip_outside_e2e,
)

PHASES = Phases()
DAY = (now() - timedelta(hours=2)).date() - timedelta(days=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_outside_e2e(
        items,
        "tests/e2e_gitops",
        "the GitOps e2e tier runs only under `make e2e-gitops` (LAKEHOUSE_E2E=1): it "
        "builds a kind cluster, every image and Flux, and deploys through git",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    PHASES.record(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    PHASES.finish("gitops-summary")


@pytest.fixture(scope="session")
def phases() -> Phases:
    return PHASES


@pytest.fixture(scope="session")
def day() -> date:
    return DAY


@pytest.fixture(scope="session")
def deployed(phases: Phases) -> str:
    """Docker -> node image (cached) -> `make gitops-up PROFILE=small`; the commit Flux deployed."""
    logs = OUT / "gitops-logs"
    with phases.phase("docker engine"):
        make("docker-engine", logs / "docker-engine.log", timeout=900)
    with phases.phase("node image (cached after the first build)"):
        make("node-image", logs / "node-image.log", timeout=3600)
    with phases.phase("make gitops-up PROFILE=small"):
        make("gitops-up", logs / "gitops-up.log", timeout=5400, PROFILE="small")
    return (STATE / "gitops-revision").read_text().strip()


@pytest.fixture(scope="session")
def airflow(deployed: str) -> Iterator[Airflow]:
    password = secret_data(f"{RELEASE}-credentials")["AIRFLOW_ADMIN_PASSWORD"]
    with port_forward(f"svc/{RELEASE}-airflow-api-server", 8080) as port:
        yield Airflow(f"http://127.0.0.1:{port}", "admin", password)


@pytest.fixture(scope="session")
def summary_facts(phases: Phases) -> dict[str, Any]:
    return phases.facts
