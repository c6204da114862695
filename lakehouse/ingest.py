"""Ingest: write the interval's raw events into the raw zone, plus a manifest of what was written.

In this project the source is the deterministic generator; the manifest (line and file counts
per ingest date) lets bronze prove that every line written was landed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from lakehouse.context import StageContext, StageResult, interval_parser, parse_interval
from lakehouse.entrypoint import run_stage
from lakehouse.generator import GeneratorConfig, generate_day, write_day
from lakehouse.manifest import write_manifest
from lakehouse.tables import hour_uri

STAGE = "ingest"


def run_interval(
    ctx: StageContext, progress: Callable[[], None] | None = None
) -> list[StageResult]:
    """Generate and write each day; ``progress`` is called once per hourly object written."""
    config = GeneratorConfig.from_settings(ctx.settings)
    results = []
    for day in ctx.days():
        started = time.monotonic()
        batch = generate_day(config, day)
        _, lines = write_day(ctx.settings, batch, progress=progress)
        per_file = {
            hour_uri(ctx.settings, day, hour): len(batch.files[hour]) for hour in batch.files
        }
        write_manifest(ctx.settings, day, per_file, batch.injected)
        result = StageResult(STAGE, day, ctx.run_id)
        result.counts = {
            "raw_lines": lines,
            "raw_files": len(per_file),
            "valid_events": len(batch.valid_events),
            "labelled_anomalies": len(batch.ground_truth),
        }
        result.seconds = time.monotonic() - started
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return run_stage(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
