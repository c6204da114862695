"""One objectStore API, two bundled servers: SeaweedFS (default) and MinIO (objectStore.server).

Each server renders alone, the endpoint every client gets names the Service of the server that
is rendered, the SeaweedFS pod meets the image's contract (entrypoint args, /data, /tmp, the key
pair from Secret references only), and an unknown server fails naming objectStore.server.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import pytest
from manifest_tools import Renderer, is_ours, load_docs, pod_specs, settings_data

MINIO = ("objectStore.server=minio",)
# The kinds a bundled server consists of (the PVC comes from the StatefulSet's claim template).
SERVER_KINDS = {"StatefulSet", "Service", "NetworkPolicy"}


@pytest.fixture(scope="module")
def minio_docs(renderer: Renderer) -> list[dict[str, Any]]:
    return load_docs(renderer.render(sets=MINIO))


def component_objects(docs: list[dict[str, Any]], component: str) -> set[tuple[str, str]]:
    """(kind, name) of every object of ours labelled with this component."""
    return {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if is_ours(d) and d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    }


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def server_container(docs: list[dict[str, Any]], server: str) -> dict[str, Any]:
    (container,) = named(docs, "StatefulSet", f"lakehouse-{server}")["spec"]["template"]["spec"][
        "containers"
    ]
    return container


def test_default_render_is_seaweedfs_without_minio(default_docs: list[dict[str, Any]]) -> None:
    assert component_objects(default_docs, "seaweedfs") == {
        ("StatefulSet", "lakehouse-seaweedfs"),
        ("Service", "lakehouse-seaweedfs"),
        ("NetworkPolicy", "lakehouse-seaweedfs-ingress"),
        ("NetworkPolicy", "lakehouse-seaweedfs-clients"),
    }
    assert component_objects(default_docs, "minio") == set()
    # Nothing else of ours names MinIO either (no leftover port, env var or policy).
    text = repr([d for d in default_docs if is_ours(d)]).lower()
    assert "minio" not in text


def test_minio_render_is_minio_without_seaweedfs(minio_docs: list[dict[str, Any]]) -> None:
    assert component_objects(minio_docs, "minio") == {
        ("StatefulSet", "lakehouse-minio"),
        ("Service", "lakehouse-minio"),
        ("NetworkPolicy", "lakehouse-minio-ingress"),
        ("NetworkPolicy", "lakehouse-minio-clients"),
    }
    assert component_objects(minio_docs, "seaweedfs") == set()
    assert "seaweedfs" not in repr([d for d in minio_docs if is_ours(d)]).lower()
    container = server_container(minio_docs, "minio")
    assert container["image"] == "quay.io/minio/minio:RELEASE.2025-10-15T17-29-55Z"


def test_external_store_renders_no_server(renderer: Renderer) -> None:
    sets = (
        "objectStore.enabled=false",
        "objectStore.external.endpoint=https://s3.example.com",
        "credentials.objectStore.existingSecret=s3-keys",
    )
    docs = load_docs(renderer.render(sets=sets))
    assert component_objects(docs, "seaweedfs") == set()
    assert component_objects(docs, "minio") == set()
    assert [d for d in docs if d["kind"] == "Job" and "buckets" in d["metadata"]["name"]] == []
    assert settings_data(docs)["LAKEHOUSE_S3_ENDPOINT"] == "https://s3.example.com"
    (egress,) = [d for d in docs if d["metadata"]["name"] == "lakehouse-object-store-clients"]
    assert egress["spec"]["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}]}]


@pytest.mark.parametrize(
    ("sets", "server", "port"), [((), "seaweedfs", 8333), (MINIO, "minio", 9000)]
)
def test_s3_endpoint_names_the_rendered_server(
    renderer: Renderer, sets: tuple[str, ...], server: str, port: int
) -> None:
    """LAKEHOUSE_S3_ENDPOINT is http://<Service>:<port>, where that Service exists, selects the
    server's pods and sends the port to the container port the server listens on; MLflow's
    artifact endpoint is the same one."""
    docs = load_docs(renderer.render(sets=sets))
    endpoint = urlsplit(settings_data(docs)["LAKEHOUSE_S3_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == (
        "http",
        f"lakehouse-{server}",
        port,
    )
    service = named(docs, "Service", endpoint.hostname)
    (svc_port,) = [p for p in service["spec"]["ports"] if p["port"] == endpoint.port]
    assert svc_port["name"] == "s3"
    pod_labels = named(docs, "StatefulSet", f"lakehouse-{server}")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {
        p["name"]: p["containerPort"] for p in server_container(docs, server)["ports"]
    }
    assert container_ports[svc_port["targetPort"]] == port
    # The server's ingress policy opens exactly that port to the object-store clients.
    ingress = named(docs, "NetworkPolicy", f"lakehouse-{server}-ingress")["spec"]["ingress"]
    assert ingress == [
        {
            "from": [{"podSelector": {"matchLabels": {"lakehouse/object-store-client": "true"}}}],
            "ports": [{"protocol": "TCP", "port": port}],
        }
    ]
    mlflow = named(docs, "Deployment", "lakehouse-mlflow")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in mlflow["containers"][0]["env"]}
    assert env["MLFLOW_S3_ENDPOINT_URL"] == f"http://lakehouse-{server}:{port}"


@pytest.mark.parametrize("sets", [(), MINIO], ids=["seaweedfs", "minio"])
def test_every_object_store_client_reaches_the_server(
    renderer: Renderer, sets: tuple[str, ...]
) -> None:
    """The same client label opens the same paths whichever server runs: every pod of ours
    labelled lakehouse/object-store-client is selected by the clients' egress policy, whose
    destination is the server's pods."""
    docs = load_docs(renderer.render(sets=sets))
    server = "minio" if sets else "seaweedfs"
    egress = named(docs, "NetworkPolicy", f"lakehouse-{server}-clients")["spec"]
    assert egress["podSelector"] == {"matchLabels": {"lakehouse/object-store-client": "true"}}
    (rule,) = egress["egress"]
    (to,) = rule["to"]
    pod_labels = named(docs, "StatefulSet", f"lakehouse-{server}")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert to["podSelector"]["matchLabels"].items() <= pod_labels.items()
    clients = sorted(
        doc["metadata"]["labels"]["app.kubernetes.io/component"]
        for doc, _ in pod_specs(docs)
        if is_ours(doc)
        and doc["spec"]["template"]["metadata"]["labels"].get("lakehouse/object-store-client")
        == "true"
    )
    assert clients == [
        "airflow-api-server", "airflow-dag-processor", "mlflow", "object-store-buckets",
    ]  # fmt: skip


def test_seaweedfs_pod_follows_the_image_contract(default_docs: list[dict[str, Any]]) -> None:
    sts = named(default_docs, "StatefulSet", "lakehouse-seaweedfs")
    spec = sts["spec"]["template"]["spec"]
    container = server_container(default_docs, "seaweedfs")
    assert sts["spec"]["replicas"] == 1
    assert container["image"] == "lakehouse/seaweedfs:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    # The image's ENTRYPOINT runs weed with these args: nothing overrides it.
    assert "command" not in container
    args = container["args"]
    assert args[: args.index("server") + 1] == ["-logtostderr=true", "server"]
    for arg in ("-dir=/data", "-filer", "-filer.port=8888", "-s3", "-s3.port=8333",
                "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
                "-s3.port.iceberg=0", "-ip.bind=0.0.0.0"):  # fmt: skip
        assert arg in args, arg
    # The entrypoint appends -s3.config itself, from the two env vars.
    assert not [a for a in args if a.startswith(("-s3.config", "-s3.iam.config"))]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == "data"
    assert mounts["/tmp"] == "tmp"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp
    sc = spec["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (10001, 10001, 10001)
    assert spec["automountServiceAccountToken"] is False
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "s3", probe
    service = named(default_docs, "Service", "lakehouse-seaweedfs")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"s3": 8333, "filer": 8888}


def test_seaweedfs_values_reach_its_args(renderer: Renderer) -> None:
    sets = (
        "objectStore.seaweedfs.volumeSizeLimitMB=128",
        "objectStore.seaweedfs.volumeMax=20",
        "objectStore.seaweedfs.extraArgs[0]=-s3.allowedOrigins=http://127.0.0.1",
        "objectStore.seaweedfs.persistence.size=3Gi",
    )
    docs = load_docs(renderer.render(sets=sets))
    args = server_container(docs, "seaweedfs")["args"]
    assert "-master.volumeSizeLimitMB=128" in args
    assert "-volume.max=20" in args
    assert args[-1] == "-s3.allowedOrigins=http://127.0.0.1"
    (claim,) = named(docs, "StatefulSet", "lakehouse-seaweedfs")["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "3Gi"


@pytest.mark.parametrize("values", ["generated", "existing"])
def test_seaweedfs_credentials_come_only_from_secret_refs(
    renderer: Renderer, default_docs: list[dict[str, Any]], values: str
) -> None:
    """The S3 key pair reaches the server as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from
    secretKeyRefs to the objectStore credential's Secret; no env value, arg or annotation of the
    pod carries a secret."""
    docs = default_docs
    secret_name, keys = "lakehouse-credentials", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    if values == "existing":
        sets = (
            "credentials.objectStore.existingSecret=s3-keys",
            "credentials.objectStore.accessKeyKey=id",
            "credentials.objectStore.secretKeyKey=secret",
        )
        docs = load_docs(renderer.render(sets=sets))
        secret_name, keys = "s3-keys", ("id", "secret")
    container = server_container(docs, "seaweedfs")
    assert "envFrom" not in container
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "AWS_ACCESS_KEY_ID": {"name": secret_name, "key": keys[0]},
        "AWS_SECRET_ACCESS_KEY": {"name": secret_name, "key": keys[1]},
    }
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert literal == {"HOME": "/tmp"}
    # No generated secret value (role names aside) appears anywhere in the StatefulSet.
    sts_text = repr(named(docs, "StatefulSet", "lakehouse-seaweedfs"))
    for secret in (d for d in docs if d["kind"] == "Secret"):
        for key, value in secret["data"].items():
            if not key.endswith("_USER"):
                assert base64.b64decode(value).decode() not in sts_text, key


def test_unknown_server_is_rejected_by_the_schema(renderer: Renderer) -> None:
    proc = renderer.template(sets=("objectStore.server=ceph",))
    assert proc.returncode != 0
    assert "at '/objectStore/server'" in proc.stderr, proc.stderr


def test_unknown_server_fails_naming_the_key_without_the_schema(renderer: Renderer) -> None:
    """The template's own check, for renders that skip the schema (--skip-schema-validation)."""
    from manifest_tools import CHART_BUILD, NAMESPACE, RELEASE

    proc = renderer.run(
        "template", RELEASE, str(CHART_BUILD), "--namespace", NAMESPACE,
        "--skip-schema-validation", "--set", "objectStore.server=ceph",
    )  # fmt: skip
    assert proc.returncode != 0
    assert 'objectStore.server is "ceph": set it to seaweedfs or minio' in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("sets", "forwards"),
    [((), {"svc/lakehouse-seaweedfs 8889:8888", "svc/lakehouse-seaweedfs 8333:8333"}),
     (MINIO, {"svc/lakehouse-minio 9001:9001", "svc/lakehouse-minio 9000:9000"})],
    ids=["seaweedfs", "minio"],
)  # fmt: skip
def test_notes_print_the_object_store_forwards(
    renderer: Renderer, tmp_path: Any, sets: tuple[str, ...], forwards: set[str]
) -> None:
    """NOTES.txt: the chosen server's S3 API and browser forwards (127.0.0.1 only), and no two
    forwards of the release on the same local port, JupyterLab's included."""
    import re

    from manifest_tools import render_notes

    text = render_notes(renderer, tmp_path, (*sets, "jupyter.enabled=true"))
    found = re.findall(r"port-forward (--address \S+) (svc/\S+ (\d+):\d+)", text)
    assert {address for address, _, _ in found} == {"--address 127.0.0.1"}
    assert forwards <= {forward for _, forward, _ in found}
    other = "minio" if not sets else "seaweedfs"
    assert f"svc/lakehouse-{other}" not in text
    local_ports = [port for _, _, port in found]
    assert len(local_ports) == len(set(local_ports)), local_ports
