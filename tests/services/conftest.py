"""The services tier: real SeaweedFS (S3), PostgreSQL and MLflow servers from services/services.sh.

Uses running services when ``services/services.sh env`` answers (``make test-services`` starts
them first); otherwise starts them for this session and stops them at the end. Each pipeline run
is a subprocess (``python -m lakehouse.cli run``) with its own settings and its own Spark: the
session-scoped embedded SparkSession of tests/conftest.py is never used here.

Every scenario gets its own prefixes in the buckets and its own Iceberg catalog name, so runs
against long-lived services never see each other's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_tools import Scenario, make_scenario, parse_profile, run_pipeline, services


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "services: runs against real S3, PostgreSQL and MLflow servers (slow)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def profile() -> Iterator[dict[str, str]]:
    """The services profile (exactly the chart's ConfigMap + Secret keys)."""
    proc = services("env", check=False)
    owned = False
    if proc.returncode != 0:
        up = services("up", check=False)
        if up.returncode == 3:
            reason = [ln for ln in up.stderr.splitlines() if "cannot install" in ln]
            pytest.skip(f"services tier: {reason[-1] if reason else up.stderr[-500:]}")
        assert up.returncode == 0, f"services.sh up failed:\n{up.stderr[-3000:]}"
        owned = True
        proc = services("env")
    yield parse_profile(proc.stdout)
    if owned:
        services("down", check=False)


@pytest.fixture(scope="session")
def run_tag() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def clean(profile, run_tag, tmp_path_factory) -> Scenario:
    """One clean run of the whole pipeline through the services profile."""
    scenario = make_scenario(profile, run_tag, "clean", tmp_path_factory.mktemp("clean"))
    proc = run_pipeline(scenario)
    assert proc.returncode == 0, f"clean run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return scenario
