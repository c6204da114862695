"""Airflow secrets go by reference only, come from the chart or an existing Secret, and reach
only the components that need them."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from airflow_tools import (
    AIRFLOW_SECRET_KEYS,
    API_SERVER,
    RENDERS,
    SCHEDULER,
    airflow_cfg,
    airflow_pods,
    containers,
    find,
    worker_pod,
)
from manifest_tools import (
    GITOPS_VALUES,
    Renderer,
    load_docs,
)

# ------------------------------------------------------------------ secrets by reference only

SECRETISH = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|ACCESS_KEY")


@pytest.mark.parametrize("values", list(RENDERS))
def test_no_secret_value_in_env_or_config(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    secrets = [
        base64.b64decode(v).decode()
        for d in docs
        if d["kind"] == "Secret"
        for k, v in d.get("data", {}).items()
        if not k.endswith("_USER")
    ]
    if values != "gitops":
        assert len(secrets) >= 10
    for name, spec in airflow_pods(docs):
        for c in containers(spec):
            for env in c.get("env", []):
                where = f"{name}/{c['name']}/{env['name']}"
                if SECRETISH.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), where
                    assert "value" not in env, where
                literal = env.get("value", "")
                assert not any(s in literal for s in secrets), where
    # No ConfigMap holds a secret value: airflow.cfg, the settings, the pipeline contract...
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        text = json.dumps(cm.get("data", {}))
        assert not any(s in text for s in secrets), cm["metadata"]["name"]
    # The metadata-database URL carries no user or password (libpq reads PGUSER/PGPASSWORD).
    url = airflow_cfg(docs)["database"]["sql_alchemy_conn"]
    assert url == "postgresql+psycopg2://lakehouse-postgres:5432/airflow"


def test_generated_airflow_secrets_work(renderer: Renderer) -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    first, second = (
        find(load_docs(renderer.render()), "Secret", "lakehouse-credentials")["data"]
        for _ in range(2)
    )
    assert set(first) >= AIRFLOW_SECRET_KEYS
    key = base64.b64decode(first["AIRFLOW_FERNET_KEY"])
    token = fernet.Fernet(key).encrypt(b"connection password")
    assert fernet.Fernet(key).decrypt(token) == b"connection password"
    for name in AIRFLOW_SECRET_KEYS:
        assert first[name] != second[name], f"{name} is not generated"
        assert len(base64.b64decode(first[name])) >= 20, name


def test_gitops_airflow_secrets_come_from_the_existing_secret(
    renders: dict[str, list[dict]],
) -> None:
    docs = renders["gitops"]
    assert [d for d in docs if d["kind"] == "Secret"] == []
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for _, spec in airflow_pods(docs)
        for c in containers(spec)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {name for name, _ in refs} == {"lakehouse-credentials"}
    assert {key for _, key in refs} == AIRFLOW_SECRET_KEYS | {
        "AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    }  # fmt: skip
    # values-gitops.yaml documents every key the existing Secret must hold.
    documented = GITOPS_VALUES.read_text()
    for _, key in refs:
        assert key in documented, key


def test_secrets_reach_only_the_components_that_need_them(
    renders: dict[str, list[dict]],
) -> None:
    docs = renders["default"]

    def secret_keys(spec: dict[str, Any]) -> set[str]:
        return {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in spec["containers"][0].get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    db = {"AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD"}
    s3 = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    deployments = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("lakehouse-airflow")
    }
    assert secret_keys(deployments[API_SERVER]) == db | s3 | {
        "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
    }  # fmt: skip
    assert secret_keys(deployments[SCHEDULER]) == db | {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"}
    assert secret_keys(deployments["lakehouse-airflow-dag-processor"]) == db | s3 | {
        "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
    }  # fmt: skip
    # Worker pods: no database, no Fernet key, no JWT secret; only the S3 pair for their logs.
    assert secret_keys(worker_pod(docs)["spec"]) == s3
