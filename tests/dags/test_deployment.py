"""The Deployment macro in a worker: everything comes from the chart's pipeline contract
(LAKEHOUSE_K8S_DEPLOYMENT), and a worker without a usable one fails the render naming what is
wrong, instead of rendering pods that reference objects the release never made."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from cluster_contract import chart_env, pipeline_contract
from lakehouse_dags.deployment import DEPLOYMENT, DeploymentError


def contract_with(**changes: object) -> str:
    contract = json.loads(pipeline_contract())
    contract.update(changes)
    return json.dumps(contract)


def test_images_need_no_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    # The airflow image carries the project on PYTHONPATH only: seen on the kind cluster, every
    # task failed rendering while the image tag was looked up in the package metadata.
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    monkeypatch.setenv("LAKEHOUSE_K8S_DEPLOYMENT", contract_with(pythonImage="reg/py:9.9.9"))
    assert DEPLOYMENT.python_image == "reg/py:9.9.9"


def test_a_worker_without_the_contract_is_told_where_it_comes_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAKEHOUSE_K8S_DEPLOYMENT", raising=False)
    with pytest.raises(DeploymentError, match=r"LAKEHOUSE_K8S_DEPLOYMENT.*<fullname>-pipeline"):
        _ = DEPLOYMENT.namespace


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"namespace": "lakehouse"}', r"lacks \['settingsConfigMap'"),
    ],
)
def test_a_malformed_contract_fails_the_render(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("LAKEHOUSE_K8S_DEPLOYMENT", text)
    with pytest.raises(DeploymentError, match=message):
        _ = DEPLOYMENT.settings_configmap


def test_a_malformed_cpu_request_fails_the_render_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_K8S_DEPLOYMENT", contract_with(sparkCoreRequest="half"))
    with pytest.raises(DeploymentError, match="sparkCoreRequest='half'"):
        _ = DEPLOYMENT.spark_core_request


def test_a_service_the_chart_does_not_offer_fails_the_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_K8S_DEPLOYMENT", pipeline_contract())
    with pytest.raises(DeploymentError, match=r"no service \['warehouse'\]"):
        DEPLOYMENT.secret_env(["objectStore", "warehouse"])


def test_stage_jvms_keep_the_optimising_compiler_when_quick_jit_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in chart_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LAKEHOUSE_SPARK_QUICK_JIT", "false")
    conf = DEPLOYMENT.spark_conf()
    assert conf["spark.driver.extraJavaOptions"] == (
        "-Dlog4j2.configurationFile=file:/opt/lakehouse/spark_apps/log4j2.properties"
    )
    assert "spark.executor.extraJavaOptions" not in conf
