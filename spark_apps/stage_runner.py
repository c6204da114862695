"""How a Spark stage runs: day by day, audited, failing loudly when counts do not reconcile."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from datetime import date

from pyspark.sql import SparkSession

from lakehouse.context import ReconciliationError, StageContext, StageResult
from lakehouse.entrypoint import run_stage
from lakehouse.locks import writer_lock
from lakehouse.tables import locations, spark_uri
from spark_apps.delta_io import append_audit
from spark_apps.session import build_session

log = logging.getLogger("lakehouse")

DayFn = Callable[[SparkSession, StageContext, date], StageResult]
CheckFn = Callable[[StageResult], None]


def run_stage_days(
    ctx: StageContext, stage: str, run_day: DayFn, checks: CheckFn | None = None
) -> list[StageResult]:
    """Run ``run_day`` for each day of the interval, record each in the audit table, then
    apply ``checks`` (which raise ReconciliationError) so a failing day is still audited."""
    spark = ctx.spark or build_session(ctx.settings, app_name=f"lakehouse-{stage}")
    audit_path = spark_uri(locations(ctx.settings).audit)
    results = []
    for day in ctx.days():
        started = time.monotonic()
        result = run_day(spark, ctx, day)
        result.seconds = time.monotonic() - started
        if checks is not None:
            try:
                checks(result)
            except ReconciliationError as err:
                result.reconciled = False
                result.note = str(err)
        with writer_lock(ctx.settings, "audit", on_wait=log.warning):
            append_audit(spark, audit_path, [result])
        if not result.reconciled:
            raise ReconciliationError(result.note)
        results.append(result)
    return results


def entrypoint(
    stage: str, args: argparse.Namespace, run_interval: Callable[[StageContext], list[StageResult]]
) -> int:
    """``python -m spark_apps.<stage> --start D --end D``: run, print one JSON line per day."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run_stage(
        stage,
        args,
        run_interval,
        prepare=lambda settings: build_session(settings, app_name=f"lakehouse-{stage}"),
    )
