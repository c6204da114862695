"""Scenarios of the services tier: isolated pipeline runs on the services profile. The readers
of what Spark wrote (deltalake, pyiceberg) are tests/table_readers.py, shared with the cluster
e2e tier."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from table_readers import (  # noqa: F401  (re-exported for the services tests)
    LINEAGE,
    all_tables,
    delta_rows,
    delta_storage_options,
    iceberg_catalog,
    iceberg_rows,
    normalised,
    sqlalchemy_uri,
)

from lakehouse.settings import Settings, load_settings

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
