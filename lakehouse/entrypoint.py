"""What every stage's pod or SparkApplication main shares: settings from the environment, the
stage's writer lock, one JSON line per day on stdout, and one line on stderr (no library
traceback) when the input is bad or a configured server is unreachable."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lakehouse.context import ReconciliationError, StageContext, StageInputError, StageResult
from lakehouse.failures import unreachable
from lakehouse.locks import writer_lock
from lakehouse.settings import Settings, SettingsError, load_settings

RunFn = Callable[[StageContext], Sequence[StageResult]]


def result_line(stage: str, result: StageResult) -> dict[str, Any]:
    """The JSON line of one stage-day: counts, plus an ML stage's metrics, versions and
    artifacts."""
    line: dict[str, Any] = {
        "stage": stage,
        "day": result.day.isoformat(),
        "run_id": result.run_id,
        "reconciled": result.reconciled,
        "seconds": round(result.seconds, 2),
        **result.counts,
    }
    for extra in ("metrics", "versions", "artifacts"):
        line.update(getattr(result, extra, {}))
    if result.note:
        line["note"] = result.note
    return line


def run_stage(
    stage: str,
    args: argparse.Namespace,
    run_interval: RunFn,
    *,
    expected: tuple[type[Exception], ...] = (),
    prepare: Callable[[Settings], Any] | None = None,
) -> int:
    """Run ``run_interval`` for the parsed interval under the stage's writer lock; returns the
    exit code. ``expected`` adds exception types that mean bad input (one line, exit 1);
    ``prepare(settings)`` builds what the context carries as ``spark`` (a SparkSession)."""

    def say(message: str) -> None:
        print(f"{stage} {message}", file=sys.stderr, flush=True)

    try:
        settings = load_settings()
    except SettingsError as err:
        say(f"failed: {err}")
        return 1
    try:
        with writer_lock(settings, stage, on_wait=lambda msg: say(f"waits: {msg}")):
            spark = prepare(settings) if prepare is not None else None
            ctx = StageContext(settings, args.start, args.end, args.run_id, spark)
            results = run_interval(ctx)
    except (SettingsError, StageInputError, ReconciliationError, *expected) as err:
        say(f"failed: {err}")
        return 1
    except Exception as err:
        line = unreachable(err, settings)
        if line is None:
            raise
        say(f"failed: {line}")
        return 1
    for result in results:
        print(json.dumps(result_line(stage, result)), flush=True)
    return 0
