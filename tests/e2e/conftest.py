"""The cluster e2e tier (`make e2e`): from nothing to a green DAG run on a real kind cluster,
checked from outside. Session fixtures are the phases, in the order a user goes through them:
Docker, node image, `make up`, `make run`; the tests then check through port-forwards. Every
phase prints its time; the JSON summary goes to .cluster/e2e/summary.json.

Not part of `make test`: it needs root (or a running Docker), about 25 GB of disk and, cold, an
hour and more (see README). `LAKEHOUSE_E2E=1` is set by `make e2e`; without it every test here
is skipped, saying so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_tools import (
    OUT,
    RELEASE,
    ROOT,
    Airflow,
    MLflow,
    Phases,
    Watcher,
    cluster_reader_settings,
    docker,
    make,
    now,
    port_forward,
    secret_data,
    skip_outside_e2e,
)

PHASES = Phases()
# The interval of the run: yesterday's, the one the scheduler itself starts on unpause, so the
# e2e follows that run as `make run` does (no second run of the same interval).
DAY = (now() - timedelta(hours=2)).date() - timedelta(days=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_outside_e2e(
        items,
        "tests/e2e",
        "the cluster e2e tier runs only under `make e2e` (LAKEHOUSE_E2E=1): it builds a "
        "kind cluster, every image and runs the DAG (an hour and more cold)",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    PHASES.record(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    PHASES.finish()


@pytest.fixture(scope="session")
def phases() -> Phases:
    return PHASES


@pytest.fixture(scope="session")
def day() -> date:
    return DAY


def refuse_a_cluster_left_over() -> None:
    """Stop before `make up` when the kind cluster already exists (an E2E_KEEP=1 run, an
    interrupted one, the user's own): `make up` would reuse it, with its tables, models and
    logs, and the checks that this run wrote everything there is would fail for that reason.
    Nothing is deleted: the cluster may hold the user's work."""
    name = os.environ.get("CLUSTER_NAME", "lakehouse")
    nodes = docker(
        "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--format", "{{.Names}}"
    ).split()
    if nodes:
        pytest.exit(
            f"a kind cluster {name!r} already exists (containers {', '.join(nodes)}); the e2e "
            "checks a cluster it starts from nothing. Remove it with `make down`, then run "
            "`make e2e` again.",
            returncode=2,
        )


@pytest.fixture(scope="session")
def cluster(phases: Phases) -> Path:
    """Docker -> node image (cached) -> `make up PROFILE=small`: the user's own path."""
    logs = OUT / "logs"
    with phases.phase("docker engine"):
        make("docker-engine", logs / "docker-engine.log", timeout=900)
    refuse_a_cluster_left_over()
    with phases.phase("node image (cached after the first build)"):
        make("node-image", logs / "node-image.log", timeout=3600)
    with phases.phase("make up PROFILE=small"):
        make("up", logs / "up.log", timeout=5400, PROFILE="small")
    return logs


@pytest.fixture(scope="session")
def watcher(cluster: Path) -> Iterator[Watcher]:
    with Watcher() as w:
        yield w


@pytest.fixture(scope="session")
def credentials(cluster: Path) -> dict[str, str]:
    return secret_data(f"{RELEASE}-credentials")


@pytest.fixture(scope="session")
def settings_data(cluster: Path) -> dict[str, str]:
    from e2e_tools import kubectl_json

    return kubectl_json("get", "configmap", f"{RELEASE}-settings")["data"]


@pytest.fixture(scope="session")
def first_run(
    cluster: Path, watcher: Watcher, airflow: Airflow, phases: Phases, day: date
) -> dict[str, Any]:
    """`make run` for one interval, as a user runs it; the run id comes back through a file.
    What the watcher saw from the run's start on belongs to it (one run at a time)."""
    from datetime import datetime

    run_id_file = OUT / "first-run-id"
    with phases.phase(f"make run DAY={day}"):
        make(
            "run", cluster / "run.log", timeout=5400,
            DAY=day.isoformat(), RUN_ID_FILE=str(run_id_file), PROFILE="small",
        )  # fmt: skip
    run_id = run_id_file.read_text().strip()
    return {"run_id": run_id, "since": datetime.fromisoformat(airflow.run(run_id)["start_date"])}


@pytest.fixture(scope="session")
def history_run(first_run: dict[str, Any], phases: Phases, day: date) -> dict[str, Any]:
    """The day before, by `make run DAY=...` (a backfill of that one interval)."""
    before = day - timedelta(days=1)
    run_id_file = OUT / "history-run-id"
    with phases.phase(f"make run DAY={before}"):
        make(
            "run", OUT / "logs" / "run-history.log", timeout=5400,
            DAY=before.isoformat(), RUN_ID_FILE=str(run_id_file), PROFILE="small",
        )  # fmt: skip
    return {"run_id": run_id_file.read_text().strip()}


@pytest.fixture(scope="session")
def airflow(cluster: Path, credentials: dict[str, str]) -> Iterator[Airflow]:
    with port_forward(f"svc/{RELEASE}-airflow-api-server", 8080) as port:
        yield Airflow(f"http://127.0.0.1:{port}", "admin", credentials["AIRFLOW_ADMIN_PASSWORD"])


@pytest.fixture(scope="session")
def airflow_url(airflow: Airflow) -> str:
    return airflow.base


@pytest.fixture(scope="session")
def mlflow(cluster: Path) -> Iterator[MLflow]:
    with port_forward(f"svc/{RELEASE}-mlflow", 5000) as port:
        yield MLflow(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def filer_url(cluster: Path) -> Iterator[str]:
    with port_forward(f"svc/{RELEASE}-seaweedfs", 8888) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def reader_settings(
    cluster: Path, settings_data: dict[str, str], credentials: dict[str, str]
) -> Iterator[Any]:
    """The lakehouse settings of the cluster, the object store and catalog through port-forwards."""
    with cluster_reader_settings(settings_data, credentials) as settings:
        yield settings


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (no browser download)."""
    import shutil

    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: `make e2e` installs Debian's package as root")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=exe,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking"],
        )  # fmt: skip
        yield b
        b.close()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
