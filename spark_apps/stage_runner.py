"""How a Spark stage runs: day by day, audited, failing loudly when counts do not reconcile."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date

from pyspark.sql import SparkSession

from lakehouse.context import ReconciliationError, StageContext, StageInputError, StageResult
from lakehouse.failures import report_unreachable
from lakehouse.locks import writer_lock
from lakehouse.settings import SettingsError, load_settings
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
    try:
        settings = load_settings()
        ctx = StageContext(settings, args.start, args.end, args.run_id)
        ctx = replace(ctx, spark=build_session(settings, app_name=f"lakehouse-{stage}"))
        with writer_lock(settings, stage, on_wait=log.warning):
            results = run_interval(ctx)
        for result in results:
            print(
                json.dumps(
                    {
                        "stage": stage,
                        "day": result.day.isoformat(),
                        "run_id": result.run_id,
                        "reconciled": result.reconciled,
                        "seconds": round(result.seconds, 2),
                        **result.counts,
                    }
                )
            )
    except (SettingsError, StageInputError, ReconciliationError) as err:
        print(f"{stage} failed: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        return report_unreachable(stage, err)
    return 0
