"""The one pipeline definition: stages, what runs them, and their order.

Both the embedded runner (``lakehouse run``) and the Airflow DAG are built from ``STAGES``, so
they can never drift. Each stage names a module with

* ``run_interval(ctx)`` - what the embedded runner calls in-process, and
* ``main(argv)`` - what a pod or SparkApplication runs: ``python -m <module> --start D --end D``.

ML stages (features, train_anomaly, train_forecast, score, report) are ``kind="python"``
stages of the ``ml`` package, downstream of ``gold``: no Spark, so their pods stay small.

Each stage names the services it uses; in the cluster its pod gets exactly their credentials
and NetworkPolicy client labels, as the chart's pipeline contract spells them
(charts/lakehouse/templates/common/pipeline-configmap.yaml). Every stage takes its writer lock
in the catalog database (lakehouse/locks.py), so every stage uses ``catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

StageKind = Literal["python", "spark"]
# The services of the chart's pipeline contract: S3, the catalog database (Iceberg's JDBC
# catalog and the writer locks), the MLflow tracking server.
Service = Literal["objectStore", "catalog", "mlflow"]
SERVICES: tuple[Service, ...] = ("objectStore", "catalog", "mlflow")
# What a stage that reads or writes tables uses (maintenance too); the ML stages add MLflow.
TABLE_SERVICES: tuple[Service, ...] = ("objectStore", "catalog")
ML_SERVICES: tuple[Service, ...] = (*TABLE_SERVICES, "mlflow")


@dataclass(frozen=True)
class Stage:
    name: str
    kind: StageKind  # "spark": SparkApplication in the cluster; "python": a plain pod
    module: str
    upstream: tuple[str, ...]
    description: str
    services: tuple[Service, ...]
    # Writer-lock scope (default: the stage's name). Stages sharing a scope never run at once
    # on one warehouse: ingest rewrites the raw day that bronze reads, so they share "raw".
    lock: str = ""


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        "python",
        "lakehouse.ingest",
        (),
        "Generate the interval's raw sensor events (gzip JSON lines) into the raw zone.",
        TABLE_SERVICES,
        lock="raw",
    ),
    Stage(
        "bronze",
        "spark",
        "spark_apps.bronze",
        ("ingest",),
        "Land every raw line in Delta with parsed fields, corrupt flag and lineage.",
        TABLE_SERVICES,
        lock="raw",
    ),
    Stage(
        "silver",
        "spark",
        "spark_apps.silver",
        ("bronze",),
        "Validate, type and de-duplicate into Delta (MERGE); quarantine rejects with reasons.",
        TABLE_SERVICES,
    ),
    Stage(
        "gold",
        "spark",
        "spark_apps.gold",
        ("silver",),
        "Recompute hourly device and daily site metrics in Iceberg for the keys touched.",
        TABLE_SERVICES,
    ),
    Stage(
        "features",
        "python",
        "ml.features",
        ("gold",),
        "Build per-event and per-device-hour features (Delta) for the event dates touched.",
        ML_SERVICES,
    ),
    Stage(
        "train_anomaly",
        "python",
        "ml.train_anomaly",
        ("features",),
        "Train the IsolationForest detector, evaluate it on ground truth, register in MLflow.",
        ML_SERVICES,
    ),
    Stage(
        "train_forecast",
        "python",
        "ml.train_forecast",
        ("features",),
        "Train the LightGBM next-hour forecaster against seasonal naive, register in MLflow.",
        ML_SERVICES,
    ),
    Stage(
        "score",
        "python",
        "ml.score",
        ("train_anomaly", "train_forecast"),
        "Score the interval with the champion models into Iceberg gold prediction tables.",
        ML_SERVICES,
    ),
    Stage(
        "report",
        "python",
        "ml.report",
        ("score",),
        "Write the HTML report with plots under the warehouse and log it to MLflow.",
        ML_SERVICES,
    ),
)


def _check_services(stages: Iterable[Stage]) -> None:
    for s in stages:
        unknown = set(s.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"stage {s.name!r} uses unknown service(s) {sorted(unknown)}")


_check_services(STAGES)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; stages are {[s.name for s in STAGES]}")


def lock_scope(writer: str) -> str:
    """The writer-lock scope of a stage; any other writer (e.g. "audit") is its own scope."""
    try:
        found = stage(writer)
    except KeyError:
        return writer
    return found.lock or found.name


def edges(stages: Iterable[Stage] = STAGES) -> set[tuple[str, str]]:
    return {(up, s.name) for s in stages for up in s.upstream}


def topological_order(stages: tuple[Stage, ...] = STAGES) -> list[Stage]:
    """Stages in an order that respects ``upstream``; fails on unknown names or cycles."""
    by_name = {s.name: s for s in stages}
    for s in stages:
        missing = [u for u in s.upstream if u not in by_name]
        if missing:
            raise ValueError(f"stage {s.name!r} depends on unknown stage(s) {missing}")
    ordered: list[Stage] = []
    done: set[str] = set()
    pending = list(stages)
    while pending:
        ready = [s for s in pending if set(s.upstream) <= done]
        if not ready:
            raise ValueError(f"cycle among stages {[s.name for s in pending]}")
        for s in ready:
            ordered.append(s)
            done.add(s.name)
            pending.remove(s)
    return ordered
