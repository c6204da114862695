"""Python-side readers of what Spark wrote (no Spark here): Delta tables with ``deltalake``,
Iceberg tables with pyiceberg's SQL catalog on PostgreSQL. Shared by the services tier and the
cluster e2e tier (which reaches the same servers through kubectl port-forward)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from lakehouse.settings import Settings
from lakehouse.tables import locations

# Writers of the tables a rerun must reproduce row for row (the audit log is append-only),
# and of the ML tables, which are recomputed with whatever champion model is current.
SPARK_STAGES = ("bronze", "silver", "gold")
ML_STAGES = ("features", "score")

LINEAGE = ("_run_id", "_ingested_at", "_quarantined_at")


def delta_storage_options(settings: Settings) -> dict[str, str]:
    """``deltalake`` (object_store) options for the settings' S3 endpoint, path-style."""
    options = {
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
        "AWS_REGION": settings.aws_region,
    }
    if settings.s3_endpoint:
        options |= {
            "AWS_ENDPOINT_URL": settings.s3_endpoint,
            "AWS_ALLOW_HTTP": str(settings.s3_endpoint.startswith("http://")).lower(),
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        }
    return options


def sqlalchemy_uri(settings: Settings) -> str:
    """The JDBC catalog URI as SQLAlchemy spells it (credentials from the settings)."""
    jdbc = settings.catalog_uri.removeprefix("jdbc:")
    assert jdbc.startswith("postgresql://"), jdbc
    user = quote(settings.catalog_user or "", safe="")
    password = quote(settings.catalog_password or "", safe="")
    return jdbc.replace("postgresql://", f"postgresql+psycopg2://{user}:{password}@", 1)


def iceberg_catalog(settings: Settings) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    props = {
        "uri": sqlalchemy_uri(settings),
        "warehouse": locations(settings).iceberg_warehouse,
        "s3.access-key-id": settings.aws_access_key_id or "",
        "s3.secret-access-key": settings.aws_secret_access_key or "",
        "s3.region": settings.aws_region,
    }
    if settings.s3_endpoint:
        props["s3.endpoint"] = settings.s3_endpoint
    return SqlCatalog(settings.catalog_name, **props)


def delta_rows(settings: Settings, uri: str) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return (
        DeltaTable(uri, storage_options=delta_storage_options(settings))
        .to_pyarrow_table()
        .to_pylist()
    )


def iceberg_rows(settings: Settings, identifier: str) -> list[dict[str, Any]]:
    """Rows of ``catalog.namespace.table`` (the catalog part is the settings' own)."""
    name = ".".join(identifier.split(".")[1:])
    return iceberg_catalog(settings).load_table(name).scan().to_arrow().to_pylist()


def normalised(rows: list[dict[str, Any]], prefixes: tuple[str, ...]) -> list[tuple]:
    """Rows without lineage columns, scenario prefixes blanked, floats rounded, sorted."""

    def value(v: Any) -> Any:
        if isinstance(v, str):
            for p in prefixes:
                v = v.replace(p, "<scenario>")
            return v
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 9)
        if isinstance(v, list):
            return tuple(value(x) for x in v)
        return v

    out = [tuple((k, value(v)) for k, v in sorted(row.items()) if k not in LINEAGE) for row in rows]
    return sorted(out, key=repr)


def all_tables(settings: Settings, prefix: str) -> dict[str, list[tuple]]:
    """Every table of a scenario (minus the append-only audit log), normalised."""
    loc = locations(settings)
    out = {
        name: normalised(delta_rows(settings, uri), (prefix,))
        for name, uri in loc.tables(fmt="delta", writers=SPARK_STAGES).items()
    }
    for name, ident in loc.tables(fmt="iceberg", writers=SPARK_STAGES).items():
        out[name] = normalised(iceberg_rows(settings, ident), (prefix,))
    return out
