"""The Airflow values API: git-sync, the schema, invalid combinations, switching it off."""

from __future__ import annotations

import pytest
import yaml
from airflow_tools import (
    AIRFLOW_SECRET_KEYS,
    FULL_SETS,
    airflow_cfg,
    airflow_objects,
    env_of,
    find,
    worker_pod,
)
from manifest_tools import (
    CHART_SRC,
    Renderer,
    load_docs,
)

# ------------------------------------------------------------------ git-sync


def test_git_sync_serves_the_dags_when_enabled(
    renderer: Renderer, versions: dict[str, str]
) -> None:
    docs = load_docs(renderer.render(sets=FULL_SETS))
    cfg = airflow_cfg(docs)
    assert cfg["core"]["dags_folder"] == "/opt/airflow/git/repo/dags"
    expected_image = f"registry.k8s.io/git-sync/git-sync:{versions['GIT_SYNC_VERSION']}"
    processor = find(docs, "Deployment", "lakehouse-airflow-dag-processor")["spec"]["template"]
    sidecar = {c["name"]: c for c in processor["spec"]["containers"]}["git-sync"]
    assert sidecar["image"] == expected_image
    assert env_of(sidecar)["GITSYNC_ONE_TIME"]["value"] == "false"
    assert env_of(sidecar)["GITSYNC_REPO"]["value"] == "https://git.example.com/lakehouse.git"
    assert sidecar["envFrom"] == [{"secretRef": {"name": "git-credentials"}}]
    pod = worker_pod(docs)
    (clone,) = pod["spec"]["initContainers"]
    assert clone["image"] == expected_image
    assert env_of(clone)["GITSYNC_ONE_TIME"]["value"] == "true"
    # Both see the checkout where dags_folder points.
    for spec, name in ((processor["spec"], "dag-processor"), (pod["spec"], "base")):
        (main,) = [c for c in spec["containers"] if c["name"] == name]
        git_mount = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}["git"]
        assert cfg["core"]["dags_folder"].startswith(git_mount + "/")
    for labels in (processor["metadata"]["labels"], pod["metadata"]["labels"]):
        assert labels["lakehouse/git-client"] == "true"
    egress = find(docs, "NetworkPolicy", "lakehouse-git-clients")["spec"]["egress"]
    assert egress == [{"ports": [{"protocol": "TCP", "port": 443}]}]


def test_git_sync_tag_is_the_pinned_version(versions: dict[str, str]) -> None:
    values = yaml.safe_load((CHART_SRC / "values.yaml").read_text())
    assert values["airflow"]["gitSync"]["image"]["tag"] == versions["GIT_SYNC_VERSION"]


# ------------------------------------------------------------------ values API

SCHEMA_ERRORS = {
    "unknown key": ("airflow.bogus=1", "at '/airflow'", "additional properties 'bogus'"),
    "unknown nested key": ("airflow.gitSync.bogus=1", "at '/airflow/gitSync'", "'bogus'"),
    "unknown credential key": (
        "credentials.airflow.password=x",
        "at '/credentials/airflow'",
        "'password'",
    ),
    "wrong type": ("airflow.parallelism=many", "at '/airflow/parallelism'", "want integer"),
    "wrong boolean": ("airflow.enabled=maybe", "at '/airflow/enabled'", "want boolean"),
    "bad period": ("airflow.gitSync.period=soon", "at '/airflow/gitSync/period'", "soon"),
}


@pytest.mark.parametrize("case", list(SCHEMA_ERRORS))
def test_schema_rejects_bad_airflow_values(renderer: Renderer, case: str) -> None:
    setting, where, what = SCHEMA_ERRORS[case]
    proc = renderer.template(sets=(setting,))
    assert proc.returncode != 0
    assert where in proc.stderr, proc.stderr
    assert what in proc.stderr, proc.stderr


FAILURES = {
    "airflow on an external server without its role": (
        (
            "postgres.enabled=false",
            "postgres.external.host=db.example.com",
            "credentials.catalog.existingSecret=catalog",
            "mlflow.enabled=false",
        ),
        "set credentials.airflowDb.existingSecret",
    ),
    "git-sync without a repository": (
        ("airflow.gitSync.enabled=true",),
        "set airflow.gitSync.repo",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_invalid_airflow_combinations_fail(renderer: Renderer, case: str) -> None:
    sets, message = FAILURES[case]
    proc = renderer.template(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_airflow_can_be_switched_off(renderer: Renderer) -> None:
    docs = load_docs(renderer.render(sets=("airflow.enabled=false",)))
    assert airflow_objects(docs) == []
    secret = find(docs, "Secret", "lakehouse-credentials")
    assert not AIRFLOW_SECRET_KEYS & set(secret["data"])
