"""The Airflow component of the chart: every object rendered and valid in the default, kind
and GitOps renders; the worker pod template a secure pod; images, footprint, notes and lint."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from airflow_tools import (
    API_SERVER,
    FULL_SETS,
    KIND_VALUES,
    RENDERS,
    SCHEDULER,
    WORKER,
    airflow_cfg,
    airflow_pods,
    containers,
    find,
    worker_pod,
)
from manifest_tools import (
    CHART_BUILD,
    NAMESPACE,
    Renderer,
    dag_render_env,
    footprint,
    invalid_objects,
    load_docs,
)
from test_chart_policy import violations

# ------------------------------------------------------------------ objects and schemas


@pytest.mark.parametrize("values", list(RENDERS))
def test_every_airflow_component_is_rendered(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    for name in (API_SERVER, SCHEDULER, "lakehouse-airflow-dag-processor"):
        find(docs, "Deployment", name)
    assert [d for d in docs if d["metadata"]["name"] == "lakehouse-airflow-triggerer"] == []
    svc = find(docs, "Service", API_SERVER)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    jobs = [d for d in docs if d["kind"] == "Job" and "airflow-migrate" in d["metadata"]["name"]]
    (job,) = jobs
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "airflow", "db", "migrate",
    ]  # fmt: skip
    # The migration is a plain Job, never a Helm hook (see migrate-job.yaml).
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})


@pytest.mark.parametrize("variant", ["kind", "gitops", "full"])
def test_renders_validate_strictly(
    renderer: Renderer,
    renders: dict[str, list[dict]],
    versions: dict[str, str],
    variant: str,
) -> None:
    """Every object of the kind and GitOps renders, and of a render with every optional
    Airflow piece on, against the Kubernetes schemas (the default render: test_chart_render)."""
    pytest.importorskip("kubernetes_validate")
    docs = renders[variant] if variant != "full" else load_docs(renderer.render(sets=FULL_SETS))
    names = {d["metadata"]["name"] for d in docs}
    if variant == "full":
        assert {"lakehouse-airflow-triggerer", "lakehouse-git-clients"} <= names
    errors = invalid_objects(docs, versions["KUBERNETES_VERSION"])
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("variant", ["default", "full"])
def test_worker_pod_template_is_a_valid_secure_pod(
    renderer: Renderer,
    renders: dict[str, list[dict]],
    versions: dict[str, str],
    variant: str,
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = (
        renders["default"] if variant == "default" else load_docs(renderer.render(sets=FULL_SETS))
    )
    pod = worker_pod(docs)
    kubernetes_validate.validate(pod, versions["KUBERNETES_VERSION"], strict=True)
    spec = pod["spec"]
    assert violations(spec, ours=True) == []
    # The executor runs the task in the container named "base", as the worker ServiceAccount.
    assert [c["name"] for c in spec["containers"]] == ["base"]
    assert spec["serviceAccountName"] == WORKER
    scheduler = find(docs, "Deployment", SCHEDULER)["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == scheduler["containers"][0]["image"]
    # The scheduler reads the template from the path airflow.cfg names.
    cfg = airflow_cfg(docs)
    mount = {m["name"]: m["mountPath"] for m in scheduler["containers"][0]["volumeMounts"]}
    path = Path(cfg["kubernetes_executor"]["pod_template_file"])
    assert str(path.parent) == mount["pod-template"]
    volume = {v["name"]: v for v in scheduler["volumes"]}["pod-template"]
    assert volume["configMap"]["name"] == "lakehouse-airflow-pod-template"
    assert path.name == "pod_template.yaml"


@pytest.mark.parametrize("values", list(RENDERS))
def test_every_airflow_pod_meets_the_security_policy(
    renders: dict[str, list[dict]], values: str
) -> None:
    found = {}
    for name, spec in airflow_pods(renders[values]):
        for c in containers(spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
        if spec["securityContext"]["runAsUser"] != 50000:
            found[name] = ["not the airflow uid 50000"]
        if problems := violations(spec, ours=True):
            found[name] = problems
    assert found == {}


def test_kind_values_use_loaded_images(renders: dict[str, list[dict]]) -> None:
    docs = renders["kind"]
    for name, spec in airflow_pods(docs):
        for c in containers(spec):
            if c["image"].startswith("lakehouse/"):
                assert c["imagePullPolicy"] == "Never", f"{name}/{c['name']}"
    contract = json.loads(dag_render_env(docs)["LAKEHOUSE_K8S_DEPLOYMENT"])
    assert contract["imagePullPolicy"] == "Never"


def test_footprint_reserves_one_worker_pod(renders: dict[str, list[dict]]) -> None:
    rows = footprint(renders["default"])
    # values.yaml airflow.worker.resources.requests: 100m, 256Mi.
    assert rows["airflow-worker (reserved)"] == (Fraction(1, 10), 256 * 2**20)


def test_notes_print_the_airflow_port_forward(renderer: Renderer, tmp_path: Path) -> None:
    """NOTES.txt rendered by helm (as a plain template in a copy of the chart)."""
    chart = tmp_path / "lakehouse"
    subprocess.run(["cp", "-R", str(CHART_BUILD), str(chart)], check=True)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "notes.body" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes.yaml").write_text(
        'notes: |\n  {{- include "notes.body" . | nindent 2 }}\n'
    )
    proc = renderer.run(
        "template", "lakehouse", str(chart), "--namespace", NAMESPACE,
        "--show-only", "templates/notes.yaml",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = yaml.safe_load(proc.stdout)["notes"]
    assert (
        f"kubectl -n {NAMESPACE} port-forward --address 127.0.0.1 svc/{API_SERVER} 8080:8080"
        in text
    )
    assert "AIRFLOW_ADMIN_PASSWORD of Secret lakehouse-credentials" in text


def test_helm_lint_strict_with_kind_values(renderer: Renderer) -> None:
    args = ["lint", str(CHART_BUILD), "--strict", "--namespace", NAMESPACE]
    proc = renderer.run(*args, "--values", str(KIND_VALUES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
