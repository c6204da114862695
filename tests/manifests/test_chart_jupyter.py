"""The optional JupyterLab seed service: off by default; on, a strictly valid, policy-compliant
Deployment + ClusterIP Service wired to the lakehouse like every other client."""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from manifest_tools import (
    NAMESPACE,
    ROOT,
    Renderer,
    container_env,
    invalid_objects,
    is_ours,
    load_docs,
    pod_specs,
    render_notes,
)
from test_chart_policy import violations

from lakehouse.settings import load_settings

ENABLED = ("jupyter.enabled=true",)
NAME = "lakehouse-jupyter"


@pytest.fixture(scope="module")
def docs(renderer: Renderer) -> list[dict[str, Any]]:
    return load_docs(renderer.render(sets=ENABLED))


def jupyter_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "jupyter"
    ]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def the_container(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = named(docs, "Deployment", NAME)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


def test_disabled_by_default_renders_nothing(default_docs: list[dict[str, Any]]) -> None:
    assert jupyter_objects(default_docs) == []
    (secret,) = [d for d in default_docs if d["kind"] == "Secret"]
    assert "JUPYTER_TOKEN" not in secret["data"]


def test_enabled_renders_deployment_service_and_policies(docs: list[dict[str, Any]]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in jupyter_objects(docs))
    assert kinds == [
        ("Deployment", NAME),
        ("NetworkPolicy", "lakehouse-jupyter-clients"),
        ("NetworkPolicy", "lakehouse-jupyter-ingress"),
        ("Service", NAME),
    ]


def test_enabled_render_validates_strictly(
    docs: list[dict[str, Any]], versions: dict[str, str]
) -> None:
    pytest.importorskip("kubernetes_validate")
    errors = invalid_objects(docs, versions["KUBERNETES_VERSION"])
    assert not errors, "\n".join(errors)


def test_pod_meets_the_security_policy(docs: list[dict[str, Any]]) -> None:
    found = {
        doc["metadata"]["name"]: violations(spec, ours=is_ours(doc))
        for doc, spec in pod_specs(docs)
    }
    assert found[NAME] == []
    assert {k: v for k, v in found.items() if v} == {}


def test_pod_runs_as_the_image_user() -> None:
    """The uid of images/jupyter/Dockerfile's final USER (see the checkov skip CKV_K8S_40)."""
    dockerfile = (ROOT / "images" / "jupyter" / "Dockerfile").read_text()
    image_uid = re.findall(r"^USER (\d+)", dockerfile, flags=re.MULTILINE)[-1]
    template = (ROOT / "charts/lakehouse/templates/jupyter/deployment.yaml").read_text()
    assert re.search(r'podSecurityContext" \(dict "uid" (\d+)\)', template)[1] == image_uid


def test_server_binds_the_service_port_for_probes_and_port_forward(
    docs: list[dict[str, Any]],
) -> None:
    _, container = the_container(docs)
    assert container["command"] == ["jupyter", "lab"]
    assert "--ip=0.0.0.0" in container["args"]
    assert "--port=8888" in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": 8888, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api", "port": "http"}
    svc = named(docs, "Service", NAME)["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": "http", "port": 8888, "targetPort": "http", "protocol": "TCP"}]
    # The notebooks folder is a volume of its own, the server's root.
    assert "--ServerApp.root_dir=/tmp/notebooks" in container["args"]
    assert {"name": "notebooks", "mountPath": "/tmp/notebooks"} in container["volumeMounts"]


def test_token_is_generated_from_the_credentials_secret(renderer: Renderer) -> None:
    def token(text: str) -> str:
        found = load_docs(text)
        (secret,) = [d for d in found if d["kind"] == "Secret"]
        _, container = the_container(found)
        (ref,) = [e for e in container["env"] if e["name"] == "JUPYTER_TOKEN"]
        assert ref["valueFrom"]["secretKeyRef"] == {
            "name": "lakehouse-credentials",
            "key": "JUPYTER_TOKEN",
        }
        return base64.b64decode(secret["data"]["JUPYTER_TOKEN"]).decode()

    first, second = (token(renderer.render(sets=ENABLED)) for _ in range(2))
    assert len(first) == 48
    assert first != second


def test_token_from_an_existing_secret(renderer: Renderer) -> None:
    found = load_docs(renderer.render(sets=(*ENABLED, "credentials.jupyter.existingSecret=nb")))
    _, container = the_container(found)
    (ref,) = [e for e in container["env"] if e["name"] == "JUPYTER_TOKEN"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "nb", "key": "JUPYTER_TOKEN"}
    (secret,) = [d for d in found if d["kind"] == "Secret"]
    assert "JUPYTER_TOKEN" not in secret["data"]


def _notebook_module() -> Any:
    path = ROOT / "images" / "jupyter" / "lakehouse_notebook.py"
    spec = importlib.util.spec_from_file_location("lakehouse_notebook_for_chart", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_environment_is_a_lakehouse_client_without_database_passwords(
    docs: list[dict[str, Any]],
) -> None:
    _, container = the_container(docs)
    env = container_env(docs, container)
    settings = load_settings(env)
    assert settings.s3_endpoint == "http://lakehouse-seaweedfs:8333"
    assert settings.catalog_uri == "jdbc:postgresql://lakehouse-postgres:5432/iceberg_catalog"
    assert settings.catalog_user == "iceberg"
    assert settings.catalog_password
    assert settings.aws_access_key_id
    assert settings.mlflow_tracking_uri == "http://lakehouse-mlflow:5000"
    assert settings.spark_master == "local[2]"
    assert settings.spark_driver_memory == "1g"
    passwords = {k for k in env if "PASSWORD" in k}
    assert passwords == {"LAKEHOUSE_CATALOG_PASSWORD"}
    # What a notebook's spark_session() configures from that environment.
    conf = _notebook_module().notebook_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://lakehouse-seaweedfs:8333"
    assert conf["spark.sql.catalog.lakehouse.uri"] == settings.catalog_uri


def test_network_policies_admit_only_jupyter_clients(docs: list[dict[str, Any]]) -> None:
    ingress = named(docs, "NetworkPolicy", "lakehouse-jupyter-ingress")["spec"]["ingress"]
    assert ingress == [
        {
            "from": [{"podSelector": {"matchLabels": {"lakehouse/jupyter-client": "true"}}}],
            "ports": [{"protocol": "TCP", "port": 8888}],
        }
    ]
    labels = named(docs, "Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    for client in ("object-store", "postgres", "mlflow"):
        assert labels[f"lakehouse/{client}-client"] == "true"


def test_notes_print_the_jupyter_port_forward(renderer: Renderer, tmp_path: Path) -> None:
    text = render_notes(renderer, tmp_path, ENABLED)
    assert f"kubectl -n {NAMESPACE} port-forward --address 127.0.0.1 svc/{NAME} 8888:8888" in text
    assert "JUPYTER_TOKEN of Secret lakehouse-credentials" in text
    off = render_notes(renderer, tmp_path / "off")
    assert f"svc/{NAME} " not in off
    assert "JUPYTER_TOKEN" not in off
