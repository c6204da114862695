"""The Job `make ingest` applies, from the default install's pipeline contract as
scripts/cluster.sh reads it: valid for the pinned Kubernetes, the DAG's ingest stage pod, the
chart's security and NetworkPolicy rules."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from cluster_contract import pipeline_contract
from cluster_tools import ROOT

from lakehouse.pipeline import STAGES
from lakehouse.versions import versions


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    # Through the command line, as scripts/cluster.sh runs it.
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/cluster_jobs.py"),
            "ingest",
            "--deployment",
            "-",
            "--name",
            "lakehouse-ingest-20260105",
            "--start",
            "2026-01-05",
            "--end",
            "2026-01-06",
        ],
        input=pipeline_contract(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def test_a_malformed_contract_is_refused_with_its_reason() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/cluster_jobs.py"), "ingest", "--deployment", "-",
         "--name", "x", "--start", "2026-01-05", "--end", "2026-01-06"],
        input='{"namespace": "lakehouse"}', capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "LAKEHOUSE_K8S_DEPLOYMENT lacks ['settingsConfigMap'" in proc.stderr
    assert not proc.stdout


def test_job_is_valid_for_the_pinned_kubernetes(job: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate missing: the dev extra provides it"
    )
    kubernetes_validate.validate(job, versions()["KUBERNETES_VERSION"], strict=True)


def test_strict_validation_catches_a_misspelled_field(job: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate missing: the dev extra provides it"
    )
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, versions()["KUBERNETES_VERSION"], strict=True)


def test_runs_the_pipelines_ingest_module_for_the_interval(job: dict[str, Any]) -> None:
    (ingest,) = [s for s in STAGES if s.name == "ingest"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", ingest.module]
    assert container["args"][:4] == ["--start", "2026-01-05", "--end", "2026-01-06"]
    assert container["image"] == "lakehouse/python:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_settings_and_only_the_object_store_and_catalog_keys(job: dict[str, Any]) -> None:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "lakehouse-settings"}}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs == {
        "AWS_ACCESS_KEY_ID": {"name": "lakehouse-credentials", "key": "AWS_ACCESS_KEY_ID"},
        "AWS_SECRET_ACCESS_KEY": {"name": "lakehouse-credentials", "key": "AWS_SECRET_ACCESS_KEY"},
        # The writer lock (lakehouse/locks.py) is taken in the catalog database.
        "LAKEHOUSE_CATALOG_USER": {
            "name": "lakehouse-credentials",
            "key": "LAKEHOUSE_CATALOG_USER",
        },
        "LAKEHOUSE_CATALOG_PASSWORD": {
            "name": "lakehouse-credentials",
            "key": "LAKEHOUSE_CATALOG_PASSWORD",
        },
    }


def test_secure_and_admitted_by_the_network_policies(job: dict[str, Any]) -> None:
    template = job["spec"]["template"]
    spec = template["spec"]
    (container,) = spec["containers"]
    assert template["metadata"]["labels"]["lakehouse/object-store-client"] == "true"
    assert template["metadata"]["labels"]["lakehouse/postgres-client"] == "true"
    assert "lakehouse/mlflow-client" not in template["metadata"]["labels"]
    assert template["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "make"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
