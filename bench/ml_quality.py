"""ML quality on default demo data: anomaly F1 per kind and the forecast's MAE ratio to the
seasonal-naive baseline, per day, from a full embedded pipeline run in a fresh LAKEHOUSE_HOME.

    .venv/bin/python bench/ml_quality.py [--days 3] [--home DIR]

Every day trains on the features up to that day and is evaluated on the day's last 12 hours
(the hold-out), so day k of an N-day run reports what a k-day demo reports. Aims:
anomaly F1 >= 0.85, MAE ratio <= 0.75.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakehouse.runner import run_pipeline, write_summary
from lakehouse.settings import load_settings

KINDS = ("spike", "drift", "stuck")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="default: LAKEHOUSE_DEMO_DAYS")
    parser.add_argument("--home", default=None, help="default: a fresh temporary folder")
    args = parser.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="lakehouse-ml-bench-")
    settings = load_settings({**os.environ, "LAKEHOUSE_HOME": home})
    days = args.days or settings.demo_days
    start = settings.demo_start
    print(
        f"{settings.devices} devices, {settings.reading_seconds} s readings, {days} day(s) "
        f"from {start}; home {settings.home}",
        flush=True,
    )
    began = time.monotonic()
    report = run_pipeline(settings, start, start + timedelta(days=days))
    summary = write_summary(settings, report)
    print(f"pipeline: {time.monotonic() - began:.0f} s; report {summary['report']}\n")

    header = f"{'day':<11} {'F1':>6} " + " ".join(f"{'F1 ' + k:>9}" for k in KINDS)
    header += f" {'P':>6} {'R':>6} {'MAE ratio':>10} {'scaled':>7}"
    print(header)
    by_day: dict[str, dict[str, dict[str, float]]] = {}
    for r in report.results:
        if r.stage in ("train_anomaly", "train_forecast"):
            by_day.setdefault(r.day.isoformat(), {})[r.stage] = getattr(r, "metrics", {})
    for day, stages in sorted(by_day.items()):
        a, f = stages.get("train_anomaly", {}), stages.get("train_forecast", {})

        def cell(m: dict[str, float], key: str, width: int) -> str:
            return f"{m[key]:>{width}.3f}" if key in m else f"{'-':>{width}}"

        line = f"{day:<11} {cell(a, 'f1', 6)} "
        line += " ".join(cell(a, f"f1_{k}", 9) for k in KINDS)
        line += f" {cell(a, 'precision', 6)} {cell(a, 'recall', 6)}"
        line += f" {cell(f, 'mae_ratio', 10)} {cell(f, 'scaled_mae_ratio', 7)}"
        print(line)
    print("\nper-kind precision counts false alarms on normal readings only (other kinds left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
