"""The embedded runner: executes the pipeline definition for a date range in one process, with
one shared local SparkSession, day by day (so a day's late events correct earlier days' gold
before the next day runs), and writes ``$LAKEHOUSE_HOME/summary.json``."""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lakehouse.context import StageContext, StageResult, new_run_id
from lakehouse.locks import writer_lock
from lakehouse.pipeline import STAGES, Stage, topological_order
from lakehouse.settings import Settings
from lakehouse.tables import locations

log = logging.getLogger("lakehouse")

ProgressFn = Callable[[Stage, date], None]
DoneFn = Callable[[Stage, date, list[StageResult]], None]


@dataclass
class PipelineReport:
    run_id: str
    start: date
    end: date
    results: list[StageResult] = field(default_factory=list)
    spark_startup_seconds: float = 0.0

    @property
    def reconciled(self) -> bool:
        return all(r.reconciled for r in self.results)

    def totals(self) -> dict[str, dict[str, int]]:
        """Counts summed over days, per stage, in pipeline order."""
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            stage = out.setdefault(r.stage, {})
            for key, value in r.counts.items():
                stage[key] = stage.get(key, 0) + value
        return out


def select_stages(names: Sequence[str] | None) -> list[Stage]:
    ordered = topological_order(STAGES)
    if not names:
        return ordered
    known = {s.name for s in ordered}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {sorted(known)}")
    return [s for s in ordered if s.name in names]


def _started_session(settings: Settings) -> tuple[Any, float]:
    """The embedded runner's one local SparkSession, and the seconds it took to start."""
    from spark_apps.session import build_session

    began = time.monotonic()
    spark = build_session(settings, app_name="lakehouse-embedded")
    return spark, time.monotonic() - began


def run_pipeline(
    settings: Settings,
    start: date,
    end: date,
    *,
    run_id: str | None = None,
    stages: Sequence[str] | None = None,
    spark: Any = None,
    on_stage: ProgressFn | None = None,
    on_done: DoneFn | None = None,
    on_wait: Callable[[str], None] = log.warning,
) -> PipelineReport:
    """Run the selected stages for every day in [start, end). Raises on the first failure;
    completed days stay committed, and a rerun of any day is safe."""
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    chosen = select_stages(stages)
    report = PipelineReport(run_id or new_run_id("embedded"), start, end)
    day = start
    while day < end:
        for stage in chosen:
            if on_stage is not None:
                on_stage(stage, day)
            module = importlib.import_module(stage.module)
            with writer_lock(settings, stage.name, on_wait=on_wait):
                if spark is None and stage.kind == "spark":
                    # Started by the first Spark stage (ingest needs no JVM), under its lock.
                    spark, report.spark_startup_seconds = _started_session(settings)
                ctx = StageContext(settings, day, day + timedelta(days=1), report.run_id, spark)
                results = module.run_interval(ctx)
            report.results.extend(results)
            if on_done is not None:
                on_done(stage, day, results)
        day += timedelta(days=1)
    return report


def ml_summary(report: PipelineReport) -> dict[str, Any]:
    """The ML stages' latest metrics, table versions and artifacts (the report's path)."""
    latest: dict[str, Any] = {}
    for r in report.results:
        metrics = getattr(r, "metrics", None)
        if metrics is None or (not metrics and r.stage in latest):
            continue  # not an ML stage, or skipped after an earlier day that trained
        latest[r.stage] = {
            "day": r.day.isoformat(),
            "metrics": metrics,
            "versions": getattr(r, "versions", {}),
            "artifacts": getattr(r, "artifacts", {}),
            "note": r.note,
        }
    return latest


def summary(settings: Settings, report: PipelineReport) -> dict[str, Any]:
    loc = locations(settings)
    ml = ml_summary(report)
    return {
        "run_id": report.run_id,
        "interval": {"start": report.start.isoformat(), "end": report.end.isoformat()},
        "reconciled": report.reconciled,
        "spark_startup_seconds": round(report.spark_startup_seconds, 2),
        "totals": report.totals(),
        "stages": [
            {
                "stage": r.stage,
                "day": r.day.isoformat(),
                "reconciled": r.reconciled,
                "seconds": round(r.seconds, 2),
                "counts": r.counts,
                **({"note": r.note} if r.note else {}),
                **({"metrics": r.metrics} if getattr(r, "metrics", None) else {}),
            }
            for r in report.results
        ],
        "ml": ml,
        "report": ml.get("report", {}).get("artifacts", {}).get("report"),
        "tables": {
            "raw": loc.raw_events,
            **loc.tables(),
        },
        "mlflow_tracking_uri": settings.mlflow_tracking_uri,
        "catalog_uri": settings.catalog_uri,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_summary(settings: Settings, report: PipelineReport) -> dict[str, Any]:
    data = summary(settings, report)
    settings.summary_path.parent.mkdir(parents=True, exist_ok=True)
    settings.summary_path.write_text(json.dumps(data, indent=2) + "\n")
    return data
