"""postgres.enabled=false with postgres.external: every database client points at the external
server, nothing of the bundled PostgreSQL is rendered, and the init Job runs there only when
asked (postgres.external.runInit)."""

from __future__ import annotations

import configparser
from typing import Any

import pytest
from manifest_tools import Renderer, container_env, invalid_objects, load_docs, pod_specs

HOST, PORT = "db.example.com", 6432
EXTERNAL = (
    "postgres.enabled=false",
    f"postgres.external.host={HOST}",
    f"postgres.external.port={PORT}",
    # Existing Secrets for every role (the roles exist on the external server already).
    "credentials.existingSecret=lakehouse-db",
)
RUN_INIT = (
    "postgres.enabled=false",
    f"postgres.external.host={HOST}",
    f"postgres.external.port={PORT}",
    "postgres.external.runInit=true",
    "postgres.external.adminUser=dba",
    "credentials.postgres.existingSecret=pg-admin",
)


@pytest.fixture(scope="module")
def external(renderer: Renderer) -> list[dict[str, Any]]:
    return load_docs(renderer.render(sets=EXTERNAL))


@pytest.fixture(scope="module")
def run_init(renderer: Renderer) -> list[dict[str, Any]]:
    return load_docs(renderer.render(sets=RUN_INIT))


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("variant", ["external", "run-init"])
def test_external_renders_validate_strictly(
    variant: str, external: list, run_init: list, versions: dict[str, str]
) -> None:
    pytest.importorskip("kubernetes_validate")
    docs = external if variant == "external" else run_init
    errors = invalid_objects(docs, versions["KUBERNETES_VERSION"])
    assert not errors, "\n".join(errors)


def test_nothing_of_the_bundled_server_is_rendered(external: list[dict[str, Any]]) -> None:
    components = {
        d["metadata"].get("labels", {}).get("app.kubernetes.io/component") for d in external
    }
    assert not {"postgres", "postgres-init"} & components
    assert [
        d for d in external if d["kind"] == "StatefulSet" and "postgres" in d["metadata"]["name"]
    ] == []
    assert [
        d for d in external if d["kind"] == "Job" and "postgres-init" in d["metadata"]["name"]
    ] == []
    # Every credential is an existing Secret: nothing generated, no superuser password used.
    assert [d for d in external if d["kind"] == "Secret"] == []


def test_every_database_client_points_at_the_external_server(
    external: list[dict[str, Any]],
) -> None:
    settings = named(external, "ConfigMap", "lakehouse-settings")["data"]
    assert settings["LAKEHOUSE_CATALOG_URI"] == f"jdbc:postgresql://{HOST}:{PORT}/iceberg_catalog"
    (mlflow,) = named(external, "Deployment", "lakehouse-mlflow")["spec"]["template"]["spec"][
        "containers"
    ]
    assert (
        f"--backend-store-uri=postgresql+psycopg2://$(MLFLOW_DB_USER)@{HOST}:{PORT}/mlflow"
        in mlflow["args"]
    )
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(named(external, "ConfigMap", "lakehouse-airflow-config")["data"]["airflow.cfg"])
    assert cfg["database"]["sql_alchemy_conn"] == f"postgresql+psycopg2://{HOST}:{PORT}/airflow"
    # No object still names the bundled server's Service.
    import yaml

    assert "lakehouse-postgres:" not in yaml.safe_dump_all(external)


def test_network_policy_opens_the_external_port_to_database_clients(
    external: list[dict[str, Any]],
) -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in external if d["kind"] == "NetworkPolicy"}
    assert "lakehouse-postgres-ingress" not in policies
    assert policies["lakehouse-postgres-clients"] == {
        "podSelector": {"matchLabels": {"lakehouse/postgres-client": "true"}},
        "policyTypes": ["Egress"],
        "egress": [{"ports": [{"protocol": "TCP", "port": PORT}]}],
    }


def test_run_init_targets_the_external_server_as_its_admin(
    run_init: list[dict[str, Any]],
) -> None:
    (job,) = [
        (d, s)
        for d, s in pod_specs(run_init)
        if d["metadata"]["name"].startswith("lakehouse-postgres-init-")
    ]
    (container,) = job[1]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGHOST"]["value"] == HOST
    assert env["PGPORT"]["value"] == str(PORT)
    assert env["PGUSER"]["value"] == "dba"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-admin",
        "key": "POSTGRES_PASSWORD",
    }
    # Still no server of ours, and the generated Secret holds the role passwords the Job sets
    # but no superuser password.
    assert [
        d for d in run_init if d["kind"] == "StatefulSet" and "postgres" in d["metadata"]["name"]
    ] == []
    secret = named(run_init, "Secret", "lakehouse-credentials")["data"]
    assert "POSTGRES_PASSWORD" not in secret
    assert {"LAKEHOUSE_CATALOG_PASSWORD", "MLFLOW_DB_PASSWORD", "AIRFLOW_DB_PASSWORD"} <= set(
        secret
    )
    resolved = container_env([*run_init, _admin_secret()], container)
    assert resolved["CATALOG_DB"] == "iceberg_catalog"
    assert resolved["CATALOG_PASSWORD"]


def _admin_secret() -> dict[str, Any]:
    """The user's existing admin Secret, as the cluster would hold it."""
    return {
        "kind": "Secret",
        "metadata": {"name": "pg-admin"},
        "data": {"POSTGRES_PASSWORD": "cHc="},
    }


def test_init_job_is_renamed_when_the_server_changes(renderer: Renderer) -> None:
    def job_name(sets: tuple[str, ...]) -> str:
        docs = load_docs(renderer.render(sets=sets))
        (name,) = [
            d["metadata"]["name"]
            for d in docs
            if d["kind"] == "Job" and "postgres-init" in d["metadata"]["name"]
        ]
        return name

    first = job_name(RUN_INIT)
    assert job_name(RUN_INIT) == first
    assert job_name((*RUN_INIT, "postgres.external.host=db2.example.com")) != first
