"""What several test tiers share about the cluster: the settings the chart's ConfigMap gives a
pod with default values, and the strict reading of a CRD schema the API server applies."""

from __future__ import annotations

from typing import Any

# The lakehouse ConfigMap of the chart's default install (S3 on MinIO, PostgreSQL catalog).
CLUSTER_ENV = {
    "LAKEHOUSE_HOME": "/tmp/lakehouse",
    "LAKEHOUSE_RAW_URI": "s3://lakehouse-raw",
    "LAKEHOUSE_WAREHOUSE_URI": "s3://lakehouse-warehouse",
    "LAKEHOUSE_CATALOG_URI": "jdbc:postgresql://lakehouse-postgres:5432/iceberg",
    "LAKEHOUSE_CATALOG_NAME": "lakehouse",
    "LAKEHOUSE_S3_ENDPOINT": "http://lakehouse-minio:9000",
    "AWS_REGION": "us-east-1",
    "MLFLOW_TRACKING_URI": "http://lakehouse-mlflow:5000",
    "LAKEHOUSE_SHUFFLE_PARTITIONS": "4",
}


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever it lists the known ones, as the API
    server's strict field validation does (unless the schema preserves unknown fields)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema
