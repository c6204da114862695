"""The bucket-init Job runs the project's own init code (lakehouse.bootstrap) with exactly the
environment the kubelet would give it, resolved from the rendered ConfigMap and Secret, against
whichever bundled server objectStore.server names (SeaweedFS by default, or MinIO)."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest
from manifest_tools import ROOT, container_env, pod_specs

from lakehouse.bootstrap import wanted_buckets
from lakehouse.settings import load_bootstrap_settings, load_settings

DEFAULT_BUCKETS = {
    "lakehouse-raw", "lakehouse-warehouse", "lakehouse-mlflow", "lakehouse-airflow-logs",
}  # fmt: skip


def bucket_job(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Job, pod spec) of the one bucket-init Job (its name ends in a hash of its inputs)."""
    (found,) = [
        (doc, spec)
        for doc, spec in pod_specs(docs)
        if doc["kind"] == "Job"
        and doc["metadata"]["name"].startswith("lakehouse-object-store-buckets-")
    ]
    return found


@pytest.fixture(scope="module")
def job(default_docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    return bucket_job(default_docs)


def test_job_runs_bootstrap_buckets_in_the_python_image(job: tuple) -> None:
    doc, spec = job
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "lakehouse.bootstrap", "buckets"]
    assert (
        container["image"]
        == f"lakehouse/python:{doc['metadata']['labels']['app.kubernetes.io/version']}"
    )
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert labels["lakehouse/object-store-client"] == "true"
    # Least privilege on the network: the object store only.
    assert "lakehouse/postgres-client" not in labels
    assert "lakehouse/mlflow-client" not in labels


@pytest.mark.parametrize(
    ("sets", "endpoint"),
    [((), "http://lakehouse-seaweedfs:8333"),
     (("objectStore.server=minio",), "http://lakehouse-minio:9000")],
    ids=["seaweedfs", "minio"],
)  # fmt: skip
def test_job_environment_names_every_bucket_and_the_server(
    renderer: Any, sets: tuple[str, ...], endpoint: str
) -> None:
    from manifest_tools import load_docs

    docs = load_docs(renderer.render(sets=sets))
    _, spec = bucket_job(docs)
    env = container_env(docs, spec["containers"][0])
    settings = load_settings(env)
    boot = load_bootstrap_settings(env)
    assert set(wanted_buckets(settings, boot)) == DEFAULT_BUCKETS
    assert settings.s3_endpoint == endpoint
    assert settings.aws_access_key_id
    assert settings.aws_secret_access_key
    assert boot.databases == ()
    assert boot.wait_seconds == 300
    # No database credential reaches the bucket Job.
    assert not [k for k in env if k.endswith("PASSWORD")]


def test_switching_the_server_renames_the_job(renderer: Any, job: tuple) -> None:
    """A new server is an empty store: its Job must be new too, not the finished one."""
    from manifest_tools import load_docs

    minio_job, _ = bucket_job(load_docs(renderer.render(sets=("objectStore.server=minio",))))
    assert minio_job["metadata"]["name"] != job[0]["metadata"]["name"]


def test_no_job_without_a_bundled_server(renderer: Any) -> None:
    from manifest_tools import load_docs

    sets = ("objectStore.enabled=false", "objectStore.external.endpoint=https://s3.example.com",
            "credentials.objectStore.existingSecret=s3-keys")  # fmt: skip
    for off in (sets, ("objectStore.bucketInit.enabled=false",)):
        docs = load_docs(renderer.render(sets=off))
        assert [d for d in docs if "buckets" in d["metadata"]["name"]] == [], off


def test_job_follows_the_bucket_values(renderer: Any) -> None:
    from manifest_tools import load_docs

    docs = load_docs(renderer.render(sets=("objectStore.buckets.raw=events-raw",)))
    _, spec = bucket_job(docs)
    env = container_env(docs, spec["containers"][0])
    wanted = wanted_buckets(load_settings(env), load_bootstrap_settings(env))
    assert set(wanted) == DEFAULT_BUCKETS - {"lakehouse-raw"} | {"events-raw"}


def test_job_command_fails_naming_an_unreachable_store(
    job: tuple, default_docs: list[dict[str, Any]]
) -> None:
    """The Job's own command line and environment, pointed at a closed local port: the
    bootstrap CLI accepts them and fails with the endpoint in its message (so the Job retries)."""
    _, spec = job
    (container,) = spec["containers"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = container_env(default_docs, container)
    env.update(LAKEHOUSE_S3_ENDPOINT=f"http://127.0.0.1:{port}", LAKEHOUSE_INIT_WAIT_SECONDS="1")
    env.update(PYTHONPATH=str(ROOT), HOME="/tmp")
    command = [sys.executable, *container["command"][1:]]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"object store at http://127.0.0.1:{port} not ready" in proc.stderr
