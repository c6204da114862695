"""Shared by the Airflow chart tests (test_airflow_*.py): the value sets rendered, the objects'
names, and small readers of the rendered Airflow objects."""

from __future__ import annotations

import configparser
from typing import Any

import yaml
from manifest_tools import CHART_SRC, GITOPS_VALUES, pod_specs

KIND_VALUES = CHART_SRC / "values-kind.yaml"
RENDERS = {"default": (), "kind": (KIND_VALUES,), "gitops": (GITOPS_VALUES,)}
# Every optional Airflow piece on (and the api-server without Kubernetes API access).
FULL_SETS = (
    "airflow.triggerer.enabled=true",
    "airflow.gitSync.enabled=true",
    "airflow.gitSync.repo=https://git.example.com/lakehouse.git",
    "airflow.gitSync.credentialsSecret=git-credentials",
    "airflow.apiServer.podLogReading=false",
)
API_SERVER = "lakehouse-airflow-api-server"
SCHEDULER = "lakehouse-airflow-scheduler"
WORKER = "lakehouse-airflow-worker"
AIRFLOW_SECRET_KEYS = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_ADMIN_PASSWORD",
}


def airflow_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["metadata"]
        .get("labels", {})
        .get("app.kubernetes.io/component", "")
        .startswith("airflow")
        or d["metadata"]["name"].startswith("lakehouse-airflow")
    ]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def worker_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cm = find(docs, "ConfigMap", "lakehouse-airflow-pod-template")
    return yaml.safe_load(cm["data"]["pod_template.yaml"])


def airflow_cfg(docs: list[dict[str, Any]]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(find(docs, "ConfigMap", "lakehouse-airflow-config")["data"]["airflow.cfg"])
    return parser


def airflow_pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Airflow pod, the worker pod template included."""
    pods = [(d["metadata"]["name"], s) for d, s in pod_specs(airflow_objects(docs))]
    return [*pods, ("worker-pod-template", worker_pod(docs)["spec"])]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}
