"""Python-side readers of what Spark wrote through the services profile (no Spark here):
Delta tables with ``deltalake``, Iceberg tables with pyiceberg's SQL catalog on PostgreSQL."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lakehouse.settings import Settings, load_settings
from lakehouse.tables import locations

LINEAGE = ("_run_id", "_ingested_at", "_quarantined_at")

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services" / "services.sh"
START, END = date(2026, 1, 5), date(2026, 1, 7)
# Small data (2 days x 8 devices x one reading per 5 minutes), as the embedded e2e tier.
SMALL = {
    "LAKEHOUSE_DEVICES": "8",
    "LAKEHOUSE_SITES": "2",
    "LAKEHOUSE_READING_SECONDS": "300",
    "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
    "LAKEHOUSE_SPARK_DRIVER_MEMORY": "1g",
}
RUN_TIMEOUT = 900


def services(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run services/services.sh with this interpreter's venv."""
    env = {**os.environ, "PY": sys.executable}
    proc = subprocess.run(
        ["bash", str(SERVICES), *args], env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"services.sh {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def parse_profile(text: str) -> dict[str, str]:
    profile = {}
    for line in text.splitlines():
        if line.startswith("export "):
            ((key, _, value),) = [w.partition("=") for w in shlex.split(line[len("export ") :])]
            profile[key] = value
    return profile


@dataclass(frozen=True)
class Scenario:
    name: str
    env: dict[str, str]
    settings: Settings

    @property
    def prefix(self) -> str:
        return self.env["LAKEHOUSE_RAW_URI"].removeprefix("s3://").split("/", 1)[1]


def make_scenario(
    profile: dict[str, str], run_tag: str, name: str, home: Path, **extra: str
) -> Scenario:
    """Settings of one isolated pipeline run: the profile, small data, own prefixes/catalog."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "AWS_", "MLFLOW_", "PG"))
    }
    raw_bucket = profile["LAKEHOUSE_RAW_URI"].removeprefix("s3://").split("/")[0]
    wh_bucket = profile["LAKEHOUSE_WAREHOUSE_URI"].removeprefix("s3://").split("/")[0]
    env = {
        **base,
        **profile,
        **SMALL,
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_RAW_URI": f"s3://{raw_bucket}/{run_tag}/{name}",
        "LAKEHOUSE_WAREHOUSE_URI": f"s3://{wh_bucket}/{run_tag}/{name}",
        "LAKEHOUSE_CATALOG_NAME": f"{run_tag}_{name}",
        # Own experiments and models: another scenario's champion must not decide promotions.
        "LAKEHOUSE_MLFLOW_PREFIX": f"{run_tag}-{name}",
        "TZ": "UTC",
        **extra,
    }
    return Scenario(name, env, load_settings(env))


def pipeline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lakehouse.cli", "run",
            "--start", START.isoformat(), "--end", END.isoformat(), *args]  # fmt: skip


def run_pipeline(scenario: Scenario, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pipeline_cmd(*args), env=scenario.env, cwd=ROOT, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip


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
        for name, uri in loc.delta_tables().items()
        if name != "audit.stage_runs"
    }
    for name, ident in loc.iceberg_tables().items():
        out[name] = normalised(iceberg_rows(settings, ident), (prefix,))
    return out
