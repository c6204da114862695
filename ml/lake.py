"""Thin I/O edges of the ML stages: Delta via ``deltalake``, Iceberg via pyiceberg's SQL catalog
(the same JDBC catalog Spark writes), ground truth through ``lakehouse.storage``. No Spark.

Everything here moves frames in and out; the computations live in pure functions elsewhere.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pandas as pd
import pyarrow as pa

from lakehouse import storage
from lakehouse.settings import Settings
from lakehouse.tables import GOLD_NAMESPACE, ground_truth_uri

GROUND_TRUTH_COLUMNS = ["event_id", "device_id", "event_ts", "kind"]


# --------------------------------------------------------------------------- catalog URIs


def sqlalchemy_uri(catalog_uri: str, user: str | None = None, password: str | None = None) -> str:
    """The SQLAlchemy URI of the JDBC catalog Spark uses (``jdbc:sqlite:/p`` -> ``sqlite:////p``,
    ``jdbc:postgresql://h:5432/db`` -> ``postgresql+psycopg2://user:pw@h:5432/db``)."""
    if catalog_uri.startswith("jdbc:sqlite:"):
        path = catalog_uri[len("jdbc:sqlite:") :].removeprefix("file:")
        return f"sqlite:///{path}"
    if catalog_uri.startswith("jdbc:postgresql:"):
        parts = urlsplit(catalog_uri[len("jdbc:") :])
        params = dict(parse_qsl(parts.query))
        user = user or params.pop("user", None)
        password = password or params.pop("password", None)
        auth = ""
        if user:
            auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(params.items()))
        return f"postgresql+psycopg2://{auth}{parts.netloc}{parts.path}" + (
            f"?{query}" if query else ""
        )
    raise ValueError(
        f"LAKEHOUSE_CATALOG_URI: expected jdbc:sqlite:… or jdbc:postgresql:…, got {catalog_uri!r}"
    )


def _file_uri(uri: str) -> str:
    return uri if "://" in uri else f"file://{uri}"


def iceberg_properties(settings: Settings, warehouse: str) -> dict[str, str]:
    uri = sqlalchemy_uri(settings.catalog_uri, settings.catalog_user, settings.catalog_password)
    props = {
        "uri": uri,
        "warehouse": _file_uri(warehouse),
        "init_catalog_tables": "true",
        # The catalog schema with iceberg_type (tables vs views), as Spark's JdbcCatalog uses it
        # (jdbc.schema-version=V1): an older catalog is migrated, not used in v0 mode, where
        # pyiceberg would register its tables with an empty type.
        "schema_version": "v1",
    }
    if settings.s3_endpoint:
        props["s3.endpoint"] = settings.s3_endpoint
    if settings.aws_access_key_id:
        props["s3.access-key-id"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        props["s3.secret-access-key"] = settings.aws_secret_access_key
    props["s3.region"] = settings.aws_region
    return props


def catalog(settings: Settings, warehouse: str) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(settings.catalog_name, **iceberg_properties(settings, warehouse))


def table_ident(name: str) -> str:
    """``lakehouse.gold.t`` (Spark's catalog-qualified name) -> ``gold.t`` (pyiceberg's)."""
    parts = name.split(".")
    return ".".join(parts[-2:])


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` as an Arrow table of ``schema``. Zone-aware timestamps go in as naive UTC
    (the schema's ``tz="UTC"`` restores the zone), which spares pandas' deprecation warning
    about dropping zones inside ``from_pandas``."""
    frame = frame[schema.names].copy()
    for name in schema.names:
        if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


# --------------------------------------------------------------------------- Delta


def delta_storage_options(settings: Settings, uri: str) -> dict[str, str] | None:
    if not storage.is_s3(uri):
        return None
    opts = {"AWS_REGION": settings.aws_region, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    if settings.aws_access_key_id:
        opts["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        opts["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key
    if settings.s3_endpoint:
        opts["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        opts["AWS_ALLOW_HTTP"] = str(settings.s3_endpoint.startswith("http://")).lower()
    return opts


def _delta_uri(uri: str) -> str:
    return "s3://" + uri[len("s3a://") :] if uri.startswith("s3a://") else uri


def delta_table(settings: Settings, uri: str, version: int | None = None) -> Any | None:
    """The Delta table at ``uri`` (at ``version``), or None when there is none."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(
            _delta_uri(uri), version=version, storage_options=delta_storage_options(settings, uri)
        )
    except TableNotFoundError:
        return None


def read_delta(
    settings: Settings,
    uri: str,
    *,
    partition: str,
    values: Iterable[date],
    columns: Sequence[str] | None = None,
    version: int | None = None,
) -> tuple[pd.DataFrame, int | None]:
    """Rows of the partitions ``partition in values`` and the table version read (None: no
    table)."""
    table = delta_table(settings, uri, version)
    if table is None:
        return pd.DataFrame(columns=list(columns or [])), None
    wanted = sorted({v.isoformat() for v in values})
    frame = table.to_pandas(
        filters=[(partition, "in", wanted)], columns=list(columns) if columns else None
    )
    return frame, table.version()


def replace_delta_partitions(
    settings: Settings,
    uri: str,
    frame: pd.DataFrame,
    schema: pa.Schema,
    partition: str,
    values: Iterable[date],
) -> int:
    """Atomically replace partitions ``values`` of the Delta table with ``frame`` (one commit);
    returns the new table version."""
    from deltalake import write_deltalake

    wanted = sorted({v.isoformat() for v in values})
    data = to_arrow(frame, schema)
    opts = delta_storage_options(settings, uri)
    exists = delta_table(settings, uri) is not None
    predicate = f"{partition} IN ({', '.join(repr(v) for v in wanted)})"
    write_deltalake(
        _delta_uri(uri),
        data,
        partition_by=[partition],
        mode="overwrite" if exists else "append",
        predicate=predicate if exists else None,
        storage_options=opts,
    )
    return int(delta_table(settings, uri).version())


# --------------------------------------------------------------------------- Iceberg


def read_iceberg(
    settings: Settings, warehouse: str, name: str, row_filter: Any = None
) -> tuple[pd.DataFrame, int | None]:
    """Rows of an Iceberg table and the snapshot id read (None: no table or no snapshot)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog(settings, warehouse).load_table(table_ident(name))
    except NoSuchTableError:
        return pd.DataFrame(), None
    snapshot = table.current_snapshot()
    if snapshot is None:
        return pd.DataFrame(), None
    scan = table.scan(row_filter=row_filter) if row_filter is not None else table.scan()
    return scan.to_pandas(), snapshot.snapshot_id


def replace_iceberg_partition(
    settings: Settings, warehouse: str, name: str, schema: pa.Schema, frame: pd.DataFrame, day: date
) -> int:
    """Create the table (partitioned by ``event_date``) if needed, then replace the rows of
    ``event_date = day`` with ``frame`` in one snapshot; returns the snapshot id."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import EqualTo

    cat = catalog(settings, warehouse)
    ident = table_ident(name)
    cat.create_namespace_if_not_exists(GOLD_NAMESPACE)
    try:
        table = cat.load_table(ident)
    except NoSuchTableError:
        table = cat.create_table(ident, schema=schema)
        with table.update_spec() as spec:
            spec.add_identity("event_date")
    data = to_arrow(frame, schema)
    table.overwrite(data, overwrite_filter=EqualTo("event_date", day.isoformat()))
    return int(table.current_snapshot().snapshot_id)


# --------------------------------------------------------------------------- ground truth


def parse_ground_truth(lines: Iterable[str]) -> pd.DataFrame:
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS)


def read_ground_truth(settings: Settings, days: Iterable[date]) -> pd.DataFrame:
    """The generator's anomaly labels for ``days`` (absent days contribute nothing)."""
    frames = []
    for day in days:
        uri = ground_truth_uri(settings, day)
        if storage.exists(settings, uri):
            text = gzip.decompress(storage.read_bytes(settings, uri)).decode("utf-8")
            frames.append(parse_ground_truth(text.splitlines()))
    if not frames:
        return pd.DataFrame(columns=GROUND_TRUTH_COLUMNS)
    return pd.concat(frames, ignore_index=True)
