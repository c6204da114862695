"""Every pod the python stages would create, validated against the Kubernetes Pod schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dag_tools import SAMPLE_RUN_ID

from lakehouse.pipeline import STAGES
from lakehouse.versions import versions

PYTHON_STAGES = [s for s in STAGES if s.kind == "python"]


@pytest.fixture(scope="module")
def pods(end_to_end: Any, render_stage_pod: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {s.name: render_stage_pod(end_to_end.get_task(s.name)) for s in PYTHON_STAGES}


def test_pods_validate_against_the_kubernetes_schema(pods: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    errors = []
    for name, pod in pods.items():
        try:
            kubernetes_validate.validate(pod, versions()["KUBERNETES_VERSION"], strict=True)
        except Exception as exc:  # collect them all, then fail once
            errors.append(f"{name}: {exc}")
    assert not errors, "\n".join(errors)


def test_pod_runs_the_stage_module_for_the_interval(pods: dict[str, Any]) -> None:
    for stage in PYTHON_STAGES:
        (container,) = pods[stage.name]["spec"]["containers"]
        assert container["name"] == "base"
        assert container["image"].startswith("lakehouse/python:")
        assert container["command"] == ["python", "-m", stage.module]
        assert container["args"] == [
            "--start", "2026-01-05", "--end", "2026-01-06", "--run-id", SAMPLE_RUN_ID,
        ]  # fmt: skip


def test_pod_security_resources_and_wiring(pods: dict[str, Any]) -> None:
    for name, pod in pods.items():
        spec = pod["spec"]
        (container,) = spec["containers"]
        assert spec["restartPolicy"] == "Never"
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"], name
        assert not sc["allowPrivilegeEscalation"], name
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert container["envFrom"] == [{"configMapRef": {"name": "lakehouse-settings"}}]
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
        }
        assert secrets == {"lakehouse-credentials"}
        # Every stage takes its writer lock in the catalog database: the catalog role and the
        # label the PostgreSQL NetworkPolicy admits, ingest included.
        keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
        assert {"LAKEHOUSE_CATALOG_USER", "LAKEHOUSE_CATALOG_PASSWORD"} <= keys, name
        labels = pod["metadata"]["labels"]
        assert labels["lakehouse/object-store-client"] == "true"
        assert labels["lakehouse/postgres-client"] == "true", name
        assert labels["task_id"] == name
        assert labels["try_number"] == "1"
        ml = name != "ingest"
        assert ("lakehouse/mlflow-client" in labels) == ml, name


def test_pod_names_are_unique_per_run_task_and_try(
    end_to_end: Any, render_stage_pod: Callable[..., dict[str, Any]]
) -> None:
    names = set()
    for stage in PYTHON_STAGES:
        task = end_to_end.get_task(stage.name)
        for run_id in (SAMPLE_RUN_ID, "manual__2026-01-05T02:00:00+00:00"):
            for try_number in (1, 2):
                pod = render_stage_pod(task, run_id=run_id, try_number=try_number)
                name = pod["metadata"]["name"]
                assert len(name) <= 52, name
                assert name[0].isalpha(), name
                names.add(name)
    assert len(names) == len(PYTHON_STAGES) * 4


def test_pod_requests_match_the_footprint_budget(pods: dict[str, Any]) -> None:
    from test_spark_applications import _manifest_tools

    tools = _manifest_tools()
    cpu, memory = tools.RESERVED["training-pod (reserved)"]
    for name, pod in pods.items():
        assert tools.pod_requests(pod["spec"]) == (tools.cpu(cpu), tools.memory(memory)), name
