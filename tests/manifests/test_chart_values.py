"""values.yaml is an API: the schema rejects unknown keys and wrong types in every block we own,
and impossible combinations fail with a message naming the key to change."""

from __future__ import annotations

import json

import pytest
from manifest_tools import CHART_SRC, Renderer

# One unknown key per block we own; helm must name the block in its error.
UNKNOWN_KEYS = {
    "top-level": ("bogus=1", "additional properties 'bogus' not allowed"),
    "settings": ("settings.bogus=1", "at '/settings'"),
    "objectStore": ("objectStore.buckets.bogus=x", "at '/objectStore/buckets'"),
    "credentials": ("credentials.catalog.password=x", "at '/credentials/catalog'"),
    "networkPolicy": ("networkPolicy.bogus=1", "at '/networkPolicy'"),
    "objectStore.seaweedfs": ("objectStore.seaweedfs.bogus=1", "at '/objectStore/seaweedfs'"),
    "objectStore.minio": ("objectStore.minio.bogus=1", "at '/objectStore/minio'"),
    "objectStore.bucketInit": (
        "objectStore.bucketInit.image.bogus=1",
        "at '/objectStore/bucketInit/image'",
    ),
    "postgres": ("postgres.persistence.bogus=1", "at '/postgres/persistence'"),
    "postgres.external": ("postgres.external.sslmode=require", "at '/postgres/external'"),
    "mlflow": ("mlflow.image.bogus=1", "at '/mlflow/image'"),
}

WRONG_TYPES = {
    "settings": ("settings.seed=abc", "at '/settings/seed'"),
    "objectStore": ("objectStore.buckets.raw=Not_A_Bucket", "at '/objectStore/buckets/raw'"),
    "credentials": (
        "credentials.catalog.username=Robert'); DROP",
        "at '/credentials/catalog/username'",
    ),
    "networkPolicy": ("networkPolicy.enabled=maybe", "at '/networkPolicy/enabled'"),
    "objectStore.server": ("objectStore.server=ceph", "at '/objectStore/server'"),
    "objectStore.seaweedfs": (
        "objectStore.seaweedfs.volumeSizeLimitMB=big",
        "at '/objectStore/seaweedfs/volumeSizeLimitMB'",
    ),
    "objectStore.seaweedfs.extraArgs": (
        "objectStore.seaweedfs.extraArgs[0]=server",
        "at '/objectStore/seaweedfs/extraArgs/0'",
    ),
    "objectStore.minio": (
        "objectStore.minio.resources.requests.memory=lots",
        "at '/objectStore/minio/resources/requests/memory'",
    ),
    "postgres": ("postgres.databases.catalog=1x-y", "at '/postgres/databases/catalog'"),
    "postgres.external": ("postgres.external.port=70000", "at '/postgres/external/port'"),
    "mlflow": ("mlflow.workers=0", "at '/mlflow/workers'"),
}

# Invalid combinations -> the key named in the failure message.
COMBINATIONS = {
    "external endpoint with a bundled server": (
        ("objectStore.external.endpoint=https://s3.example.com",),
        "objectStore.external.endpoint is set while objectStore.enabled is true",
    ),
    "external endpoint with minio": (
        ("objectStore.server=minio", "objectStore.external.endpoint=https://s3.example.com"),
        "objectStore.external.endpoint is set while objectStore.enabled is true",
    ),
    "no object store": (
        ("objectStore.enabled=false",),
        "objectStore.enabled is false: set objectStore.external.endpoint",
    ),
    "external store with generated keys": (
        ("objectStore.enabled=false", "objectStore.external.endpoint=https://s3.example.com"),
        "set credentials.objectStore.existingSecret",
    ),
    "no database server": (
        ("postgres.enabled=false",),
        "postgres.enabled is false: set postgres.external.host",
    ),
    "external host with postgres": (
        ("postgres.external.host=db.example.com",),
        "postgres.external.host is set while postgres.enabled is true",
    ),
    "external server with generated role passwords": (
        (
            "postgres.enabled=false",
            "postgres.external.host=db.example.com",
            "airflow.enabled=false",
        ),
        "set credentials.catalog.existingSecret",
    ),
    "mlflow on an external server without its role": (
        (
            "postgres.enabled=false",
            "postgres.external.host=db.example.com",
            "credentials.catalog.existingSecret=catalog",
            "airflow.enabled=false",
        ),
        "set credentials.mlflowDb.existingSecret",
    ),
    "external init with a generated admin password": (
        (
            "postgres.enabled=false",
            "postgres.external.host=db.example.com",
            "postgres.external.runInit=true",
        ),
        "set credentials.postgres.existingSecret",
    ),
    "shared database": (
        ("postgres.databases.mlflow=iceberg_catalog",),
        "postgres.databases: catalog, mlflow and airflow must be three different",
    ),
    "shared bucket": (
        ("objectStore.buckets.raw=lakehouse-warehouse",),
        "objectStore.buckets: every bucket name must be different",
    ),
}


@pytest.mark.parametrize("block", list(UNKNOWN_KEYS))
def test_schema_rejects_unknown_keys(renderer: Renderer, block: str) -> None:
    setting, message = UNKNOWN_KEYS[block]
    proc = renderer.template(sets=(setting,))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize("block", list(WRONG_TYPES))
def test_schema_rejects_wrong_types(renderer: Renderer, block: str) -> None:
    setting, message = WRONG_TYPES[block]
    proc = renderer.template(sets=(setting,))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize("case", list(COMBINATIONS))
def test_invalid_combinations_fail_naming_the_key(renderer: Renderer, case: str) -> None:
    sets, message = COMBINATIONS[case]
    proc = renderer.template(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_every_owned_block_is_closed_and_documented() -> None:
    schema = json.loads((CHART_SRC / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    defs = schema["definitions"]

    def walk(node: dict, path: str) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        if node.get("type") == "object" and "properties" in node and path != "/spark-operator":
            assert node.get("additionalProperties") is False, path
            for key, child in node["properties"].items():
                walk(child, f"{path}/{key}")
        elif "$ref" not in node and node.get("type") != "object":
            assert node.get("description"), f"{path} has no description"

    walk(schema, "")


def test_values_file_documents_every_key() -> None:
    """Each leaf key of our blocks in values.yaml sits right under its own comment."""
    undocumented = []
    in_operator = False
    lines = (CHART_SRC / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        if not line.startswith(" "):
            in_operator = stripped.startswith("spark-operator:")
        key, _, value = stripped.partition(":")
        is_leaf = value.strip() != ""
        # requests/limits are documented by their "resources" comment.
        if not is_leaf or in_operator or key in ("requests", "limits"):
            continue
        if not lines[i - 1].strip().startswith("#"):
            undocumented.append(f"line {i + 1}: {key}")
    assert undocumented == []
