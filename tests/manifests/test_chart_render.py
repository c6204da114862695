"""helm lint and template; strict Kubernetes schemas; deterministic GitOps renders; wiring."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest
from manifest_tools import (
    CHART_BUILD,
    GITOPS_VALUES,
    NAMESPACE,
    ROOT,
    Renderer,
    invalid_objects,
    load_docs,
)

CRDS = {
    "sparkapplications.sparkoperator.k8s.io",
    "scheduledsparkapplications.sparkoperator.k8s.io",
    "sparkconnects.sparkoperator.k8s.io",
}

# Value combinations that must render and validate (each optional piece on and off).
VARIANTS = {
    "default": (),
    "no-network-policy": ("networkPolicy.enabled=false",),
    "no-spark-operator": ("spark-operator.enabled=false",),
    "no-mlflow": ("mlflow.enabled=false",),
    "minio": ("objectStore.server=minio",),
    "postgres-only": ("mlflow.enabled=false", "objectStore.enabled=false",
                      "objectStore.external.endpoint=https://s3.example.com",
                      "credentials.objectStore.existingSecret=s3-keys",
                      "spark-operator.enabled=false"),
    "per-credential-secrets": ("credentials.catalog.existingSecret=catalog",
                               "credentials.postgres.existingSecret=pg-super"),
}  # fmt: skip


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_helm_reports_pinned_version(renderer: Renderer, versions: dict[str, str]) -> None:
    proc = renderer.run("version", "--template", "{{.Version}}")
    assert proc.stdout.strip() == "v" + versions["HELM_VERSION"]


@pytest.mark.parametrize("values", [(), (GITOPS_VALUES,)], ids=["default", "gitops"])
def test_helm_lint_strict(renderer: Renderer, values: tuple) -> None:
    args = ["lint", str(CHART_BUILD), "--strict", "--namespace", NAMESPACE]
    for v in values:
        args += ["--values", str(v)]
    proc = renderer.run(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_render_has_every_component(default_docs: list[dict[str, Any]]) -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in default_docs}
    for expected in [
        ("StatefulSet", "lakehouse-seaweedfs"),
        ("StatefulSet", "lakehouse-postgres"),
        ("Deployment", "lakehouse-mlflow"),
        ("Deployment", "lakehouse-spark-operator-controller"),
        ("Deployment", "lakehouse-spark-operator-webhook"),
        ("ConfigMap", "lakehouse-settings"),
        ("Secret", "lakehouse-credentials"),
        ("NetworkPolicy", "lakehouse-default-deny"),
    ]:
        assert expected in names
    jobs = sorted(d["metadata"]["name"].rsplit("-", 1)[0] for d in by_kind(default_docs, "Job"))
    assert jobs == [
        "lakehouse-airflow-migrate",
        "lakehouse-object-store-buckets",
        "lakehouse-postgres-init",
    ]


def test_crds_rendered_with_include_crds(renderer: Renderer) -> None:
    docs = load_docs(renderer.render(include_crds=True))
    crds = {d["metadata"]["name"] for d in by_kind(docs, "CustomResourceDefinition")}
    assert crds == CRDS


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_object_valid_against_kubernetes_schema(
    renderer: Renderer, versions: dict[str, str], variant: str
) -> None:
    pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate missing: add it to the dev extra (charts README)",
    )
    docs = load_docs(renderer.render(sets=VARIANTS[variant], include_crds=variant == "default"))
    assert docs
    errors = invalid_objects(docs, versions["KUBERNETES_VERSION"])
    assert not errors, "\n".join(errors)
    print(
        f"{variant}: {len(docs)} objects valid against Kubernetes {versions['KUBERNETES_VERSION']}"
    )


def test_gitops_renders_are_byte_identical(renderer: Renderer, gitops_text: str) -> None:
    assert renderer.render((GITOPS_VALUES,)) == gitops_text


def test_gitops_renders_no_secret(gitops_docs: list[dict[str, Any]]) -> None:
    assert by_kind(gitops_docs, "Secret") == []
    refs = {ref["name"] for ref in secret_refs(gitops_docs)}
    assert refs == {"lakehouse-credentials"}


def secret_refs(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every secretKeyRef of every container env."""
    from manifest_tools import pod_specs

    out = []
    for _, spec in pod_specs(docs):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    out.append(ref)
    return out


def test_generated_credentials_are_random_and_complete(renderer: Renderer) -> None:
    first, second = (by_kind(load_docs(renderer.render()), "Secret")[0]["data"] for _ in range(2))
    assert set(first) == {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD",
        "LAKEHOUSE_CATALOG_USER", "LAKEHOUSE_CATALOG_PASSWORD",
        "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD", "AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET",
        "AIRFLOW_ADMIN_PASSWORD",
    }  # fmt: skip
    for key in first:
        value = base64.b64decode(first[key]).decode()
        if key.endswith("_USER"):
            assert first[key] == second[key]
        else:
            assert len(value) >= 20, key
            assert first[key] != second[key], f"{key} is not generated"


def test_every_secret_and_configmap_reference_resolves(default_docs: list[dict[str, Any]]) -> None:
    secret = by_kind(default_docs, "Secret")
    data = {s["metadata"]["name"]: set(s.get("data", {})) for s in secret}
    for ref in secret_refs(default_docs):
        assert ref["key"] in data.get(ref["name"], set()), ref
    configmaps = {c["metadata"]["name"] for c in by_kind(default_docs, "ConfigMap")}
    from manifest_tools import pod_specs

    for doc, spec in pod_specs(default_docs):
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps, doc["metadata"]["name"]
        for vol in spec.get("volumes", []):
            if "configMap" in vol and doc["metadata"]["labels"].get("helm.sh/chart", "").startswith(
                "lakehouse-"
            ):
                assert vol["configMap"]["name"] in configmaps


def test_settings_load_from_rendered_configmap_and_secret(
    default_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap + Secret are exactly what lakehouse.settings needs for the cluster mode."""
    monkeypatch.syspath_prepend(str(ROOT))
    settings_mod = pytest.importorskip("lakehouse.settings")
    (cm,) = [
        c for c in by_kind(default_docs, "ConfigMap") if c["metadata"]["name"].endswith("-settings")
    ]
    (secret,) = by_kind(default_docs, "Secret")
    env = dict(cm["data"])
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "LAKEHOUSE_CATALOG_USER",
                "LAKEHOUSE_CATALOG_PASSWORD"):  # fmt: skip
        env[key] = base64.b64decode(secret["data"][key]).decode()
    s = settings_mod.load_settings(env)
    assert s.uses_s3
    assert s.uses_postgres
    assert s.raw_uri == "s3://lakehouse-raw"
    assert s.warehouse_uri == "s3://lakehouse-warehouse"
    assert s.catalog_uri == "jdbc:postgresql://lakehouse-postgres:5432/iceberg_catalog"
    assert s.s3_endpoint == "http://lakehouse-seaweedfs:8333"
    assert s.mlflow_tracking_uri == "http://lakehouse-mlflow:5000"
    assert s.catalog_user == "iceberg"
    assert s.catalog_password
    assert s.aws_access_key_id
    # Every ConfigMap key is one that settings.py reads (no dead settings).
    source = (ROOT / "lakehouse" / "settings.py").read_text()
    for key in cm["data"]:
        name = key.removeprefix("LAKEHOUSE_")
        assert f'"{key}"' in source or f'p + "{name}"' in source, key


def test_object_names_are_unique(default_docs: list[dict[str, Any]]) -> None:
    counts = Counter((d["kind"], d["metadata"]["name"]) for d in default_docs)
    assert [k for k, n in counts.items() if n > 1] == []
