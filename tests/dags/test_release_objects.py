"""The pods the DAGs start reference only objects and keys their release creates, whatever the
release is called and however its credentials are keyed: the chart renders the names into its
pipeline contract and the DAGs read them (nothing rebuilds a name from the release).

Each case renders the chart with the pinned helm, gives the DAG tasks the rendered settings and
contract as a worker of that release has them, renders every SparkApplication and stage pod of
both DAGs, and the `make ingest` Job, and resolves every reference against the same render.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dag_tools import ROOT

from lakehouse.versions import versions

sys.path.insert(0, str(ROOT / "tests" / "manifests"))
from manifest_tools import (
    Renderer,
    ToolMissingError,
    ensure_tools,
    load_docs,
)

NAMESPACE = "data"
CUSTOM_KEYS = [
    "credentials.objectStore.accessKeyKey=S3_ID",
    "credentials.objectStore.secretKeyKey=S3_SECRET",
    "credentials.catalog.usernameKey=CATALOG_ROLE",
    "credentials.catalog.passwordKey=CATALOG_SECRET",
]
# An object-store key pair the user made before installing (not rendered by the chart).
EXISTING = "s3-keys"
# The operator watches the release's namespace (the chart refuses any other jobs namespace).
JOBS = f"spark-operator.spark.jobNamespaces={{{NAMESPACE}}}"
CASES = {
    "fullnameOverride and custom keys": (
        "acme", [JOBS, "fullnameOverride=lh-prod", *CUSTOM_KEYS],
    ),
    "release without lakehouse in its name": ("acme", [JOBS]),
    "an existing Secret for the key pair": (
        "lakehouse", [JOBS, f"credentials.objectStore.existingSecret={EXISTING}", *CUSTOM_KEYS],
    ),
}  # fmt: skip


def render(release: str, sets: list[str]) -> list[dict[str, Any]]:
    try:
        helm = ensure_tools()
    except ToolMissingError as error:
        pytest.skip(f"the chart cannot be rendered here: {error}")
    renderer = Renderer(helm, versions()["KUBERNETES_VERSION"])
    proc = renderer.template(sets=tuple(sets), release=release, namespace=NAMESPACE)
    assert proc.returncode == 0, proc.stderr
    return load_docs(proc.stdout)


def env_refs(container: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """("configmap"|"secret", name, key) for every reference of a container (or Spark role)."""
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            yield "configmap", source["configMapRef"]["name"], None
        if "secretRef" in source:
            yield "secret", source["secretRef"]["name"], None
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {})
        if "secretKeyRef" in ref:
            yield "secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
        if "configMapKeyRef" in ref:
            yield "configmap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]


@pytest.fixture(params=list(CASES), scope="module")
def case(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    release, sets = CASES[request.param]
    return request.param, render(release, sets)


def test_dag_pods_reference_only_what_the_release_creates(
    case: tuple[str, list[dict[str, Any]]],
    dagbag: Any,
    render_spark: Callable[..., dict[str, Any]],
    render_stage_pod: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakehouse_dags.operators import LakehousePodOperator, LakehouseSparkOperator

    case_name, docs = case
    data = {(d["kind"], d["metadata"]["name"]): d.get("data", {}) for d in docs}
    configmaps = {name: v for (kind, name), v in data.items() if kind == "ConfigMap"}
    secrets = {name: v for (kind, name), v in data.items() if kind == "Secret"}
    if EXISTING in {s.split("=")[1] for s in CASES[case_name][1] if "existingSecret" in s}:
        secrets[EXISTING] = {"S3_ID": "", "S3_SECRET": ""}  # the keys the values promise
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    client_labels = {
        key
        for d in docs
        if d["kind"] == "NetworkPolicy"
        for key in d["spec"]["podSelector"].get("matchLabels", {})
        if key.endswith("-client")
    }
    (contract_text,) = [c["deployment.json"] for c in configmaps.values() if "deployment.json" in c]
    (settings,) = [c for c in configmaps.values() if "LAKEHOUSE_WAREHOUSE_URI" in c]
    for key, value in {**settings, "LAKEHOUSE_K8S_DEPLOYMENT": contract_text}.items():
        monkeypatch.setenv(key, value)

    roles: list[tuple[str, dict[str, Any]]] = []
    tasks = [t for dag_id in sorted(dagbag.dag_ids) for t in dagbag.dags[dag_id].tasks]
    for task in tasks:
        if isinstance(task, LakehouseSparkOperator):
            app = render_spark(task)
            assert app["metadata"]["namespace"] == NAMESPACE
            assert app["spec"]["driver"]["serviceAccount"] in accounts, (case_name, task.task_id)
            roles += [(f"{task.task_id}.{r}", app["spec"][r]) for r in ("driver", "executor")]
        elif isinstance(task, LakehousePodOperator):
            pod = render_stage_pod(task)
            assert pod["metadata"]["namespace"] == NAMESPACE
            (container,) = pod["spec"]["containers"]
            roles.append((task.task_id, {**container, "labels": pod["metadata"]["labels"]}))
    sys.path.insert(0, str(ROOT / "scripts"))
    from cluster_jobs import ingest_job

    job = ingest_job(
        name="ingest-20260105",
        contract=json.loads(contract_text),
        start="2026-01-05",
        end="2026-01-06",
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    roles.append(("make ingest", {**container, "labels": labels}))
    assert len(roles) >= 12, roles

    for where, spec in roles:
        for kind, ref, key in env_refs(spec):
            objects = configmaps if kind == "configmap" else secrets
            assert ref in objects, f"{case_name}: {where} references {kind} {ref}, not rendered"
            assert key is None or key in objects[ref], (
                f"{case_name}: {where}: {ref} has no key {key}"
            )
        for label in spec["labels"]:
            if label.startswith("lakehouse/"):
                assert label in client_labels, (
                    f"{case_name}: {where}: no NetworkPolicy admits {label}"
                )
