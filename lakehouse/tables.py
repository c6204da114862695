"""Where every dataset lives, derived from settings: one place for paths and table names.

Python code (generator, deltalake, pyiceberg) addresses object storage as ``s3://``; Spark's
Hadoop filesystem uses ``s3a://`` for the same objects. ``spark_uri`` converts.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Literal

from lakehouse.settings import Settings

GOLD_NAMESPACE = "gold"
TableFormat = Literal["delta", "iceberg"]


@dataclass(frozen=True)
class Table:
    """One table of the lakehouse: the registry below is the only list of them."""

    name: str
    format: TableFormat  # Delta tables are addressed by path, Iceberg tables by catalog name
    writer: str  # the stage that writes it (its writer lock); "audit": every stage's run log
    field: str  # the attribute of Locations that holds where it lives


TABLES: tuple[Table, ...] = (
    Table("bronze.iot_events", "delta", "bronze", "bronze_events"),
    Table("silver.iot_events", "delta", "silver", "silver_events"),
    Table("silver.quarantine", "delta", "silver", "silver_quarantine"),
    Table("silver.devices", "delta", "silver", "silver_devices"),
    Table("audit.stage_runs", "delta", "audit", "audit"),
    Table("features.events", "delta", "features", "features_events"),
    Table("features.device_hourly", "delta", "features", "features_hourly"),
    Table("gold.device_hourly", "iceberg", "gold", "gold_device_hourly"),
    Table("gold.site_daily", "iceberg", "gold", "gold_site_daily"),
    Table("gold.anomaly_scores", "iceberg", "score", "gold_anomaly_scores"),
    Table("gold.device_hourly_forecast", "iceberg", "score", "gold_forecasts"),
)


def table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(f"unknown table {name!r}; tables are {[t.name for t in TABLES]}")


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def spark_uri(uri: str) -> str:
    """The Hadoop-filesystem form of a storage URI (``s3://b/k`` -> ``s3a://b/k``)."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


@dataclass(frozen=True)
class Locations:
    # Raw zone (written by the generator through lakehouse.storage).
    raw_events: str
    raw_ground_truth: str
    raw_devices: str
    raw_manifests: str
    # Delta tables (path based).
    bronze_events: str
    silver_events: str
    silver_quarantine: str
    silver_devices: str
    audit: str
    # ML features (Delta, path based) and reports (HTML under the warehouse).
    features_events: str
    features_hourly: str
    reports: str
    # Iceberg (catalog based).
    iceberg_warehouse: str
    gold_device_hourly: str
    gold_site_daily: str
    gold_anomaly_scores: str
    gold_forecasts: str

    def tables(
        self, *, fmt: TableFormat | None = None, writers: Collection[str] | None = None
    ) -> dict[str, str]:
        """Registered tables (name -> storage URI or catalog identifier), optionally only those
        of one format or of some writers."""
        return {
            t.name: getattr(self, t.field)
            for t in TABLES
            if (fmt is None or t.format == fmt) and (writers is None or t.writer in writers)
        }


def _check_registry() -> None:
    fields = set(Locations.__dataclass_fields__)
    stray = [t.name for t in TABLES if t.field not in fields]
    if stray or len({t.name for t in TABLES}) != len(TABLES):
        raise ValueError(f"table registry: unknown Locations field or duplicate name: {stray}")


_check_registry()


def locations(settings: Settings) -> Locations:
    raw = settings.raw_uri
    wh = settings.warehouse_uri
    catalog = settings.catalog_name
    return Locations(
        raw_events=join_uri(raw, "iot_events"),
        raw_ground_truth=join_uri(raw, "ground_truth", "anomalies"),
        raw_devices=join_uri(raw, "reference", "devices.jsonl"),
        raw_manifests=join_uri(raw, "_manifests", "iot_events"),
        bronze_events=join_uri(wh, "bronze", "iot_events"),
        silver_events=join_uri(wh, "silver", "iot_events"),
        silver_quarantine=join_uri(wh, "silver", "quarantine"),
        silver_devices=join_uri(wh, "silver", "devices"),
        audit=join_uri(wh, "audit", "stage_runs"),
        features_events=join_uri(wh, "features", "events"),
        features_hourly=join_uri(wh, "features", "device_hourly"),
        reports=join_uri(wh, "reports"),
        iceberg_warehouse=join_uri(wh, "iceberg"),
        gold_device_hourly=f"{catalog}.{GOLD_NAMESPACE}.device_hourly",
        gold_site_daily=f"{catalog}.{GOLD_NAMESPACE}.site_daily",
        gold_anomaly_scores=f"{catalog}.{GOLD_NAMESPACE}.anomaly_scores",
        gold_forecasts=f"{catalog}.{GOLD_NAMESPACE}.device_hourly_forecast",
    )


# --------------------------------------------------------------------------- raw-zone layout
# The one definition of the raw zone's object names: the generator writes them, bronze, the ML
# ground truth, the manifests and the bench read them.
RAW_OBJECT = "part-00000.jsonl.gz"
_INGEST_HOUR = re.compile(r"ingest_hour=(\d+)")


def raw_day_uri(raw_events: str, day: date) -> str:
    """The ``ingest_date=`` prefix of one day under a raw-events base (s3:// or s3a://)."""
    return join_uri(raw_events, f"ingest_date={day.isoformat()}")


def events_prefix(settings: Settings, day: date) -> str:
    return raw_day_uri(locations(settings).raw_events, day)


def hour_uri(settings: Settings, day: date, hour: int) -> str:
    return join_uri(events_prefix(settings, day), f"ingest_hour={hour:02d}", RAW_OBJECT)


def ingest_hour_of(uri: str) -> int | None:
    """The ingest hour a raw object's name carries (None for a name outside the layout)."""
    match = _INGEST_HOUR.search(uri)
    return int(match.group(1)) if match else None


def ground_truth_prefix(settings: Settings, day: date) -> str:
    return join_uri(locations(settings).raw_ground_truth, f"event_date={day.isoformat()}")


def ground_truth_uri(settings: Settings, day: date) -> str:
    return join_uri(ground_truth_prefix(settings, day), RAW_OBJECT)


def manifest_uri(settings: Settings, day: date) -> str:
    return join_uri(locations(settings).raw_manifests, f"ingest_date={day.isoformat()}.json")
