"""The Deployment macro in a worker as the airflow image runs it: the project on PYTHONPATH,
without package metadata (seen on the kind cluster: every task failed rendering its template)."""

from __future__ import annotations

from importlib import metadata

import pytest
from lakehouse_dags.deployment import DEPLOYMENT, DeploymentError


@pytest.fixture
def no_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)


def test_images_from_the_environment_need_no_package_metadata(
    no_package_metadata: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_SPARK_IMAGE", "lakehouse/spark:9.9.9")
    monkeypatch.setenv("LAKEHOUSE_PYTHON_IMAGE", "lakehouse/python:9.9.9")
    assert DEPLOYMENT.spark_image == "lakehouse/spark:9.9.9"
    assert DEPLOYMENT.python_image == "lakehouse/python:9.9.9"


def test_without_images_or_metadata_the_error_names_the_variables(
    no_package_metadata: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKEHOUSE_PYTHON_IMAGE", raising=False)
    with pytest.raises(DeploymentError, match="LAKEHOUSE_PYTHON_IMAGE"):
        _ = DEPLOYMENT.python_image


def test_a_malformed_cpu_request_fails_the_render_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_SPARK_CORE_REQUEST", "half")
    with pytest.raises(DeploymentError, match="LAKEHOUSE_SPARK_CORE_REQUEST='half'"):
        _ = DEPLOYMENT.spark_core_request
