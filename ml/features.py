"""Features (Delta, versioned): per event from silver, per device-hour from gold.

Per event (``features/events``), computed per device over the event date plus two days of
context, so one anomaly on one day cannot bend the baseline much:

* ``baseline``: a robust least-squares fit of level + daily harmonic (sensors follow a daily
  cycle); ``resid_z`` is the deviation from it in units of the device's noise;
* ``noise_scale``: the device's noise, from the MAD of first differences (immune to the daily
  cycle and to slow drifts);
* ``local_z``: deviation from the median of the 5 readings around it (spikes);
* ``level_z``/``level_trailing_z``/``level_leading_z``: mean ``resid_z`` over the hour around,
  before and after the reading (drifts are small per reading but sustained);
* ``diff_z``, ``rolling_std_z``, ``run_length``/``stuck_length`` (a frozen sensor repeats its
  value exactly; ``stuck_length`` counts the run for all but its first reading).

Per device-hour (``features/device_hourly``), from gold hourly means and only from hours before
the one predicted: lags 1-3 and 24, a daily-harmonic ``profile`` fitted on the trailing 24 hours
(its value at the target hour is the reference forecast), deviations of recent hours from that
fit in units of the device's within-hour spread, and calendar fields. ``actual`` is the target.

The stage recomputes the event dates touched by silver rows ingested in the interval (late
events correct earlier days, as far back as the lateness horizon, LAKEHOUSE_MAX_LATENESS_DAYS),
replacing those partitions: reruns change nothing.

This module is the stage (what it reads and writes); the computations are pure functions of
frames in ml/event_features.py and ml/hourly_features.py, on the fits of ml/fitting.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa

from lakehouse.context import StageContext, StageInputError, interval_parser, parse_interval
from lakehouse.tables import locations
from ml import lake
from ml.event_features import (
    CONTEXT_DAYS,
    EVENT_COLUMNS,
    MIN_READINGS,
    SILVER_COLUMNS,
    event_features,
    too_few_readings,
)
from ml.hourly_features import HOURLY_COLUMNS, hourly_features
from ml.stage import MLResult, entrypoint

STAGE = "features"


_TYPES = {
    "event_ts": pa.timestamp("us", tz="UTC"),
    "hour_start": pa.timestamp("us", tz="UTC"),
    "event_date": pa.date32(),
    "hour_of_day": pa.int32(),
    "day_of_week": pa.int32(),
    "stuck_length": pa.int64(),
    "run_length": pa.int64(),
    "window_hours": pa.int64(),
    "_source_version": pa.int64(),
}
_STRINGS = {"event_id", "device_id", "site_id", "sensor_type"}


def _schema(columns: Sequence[str]) -> pa.Schema:
    """Explicit table schemas: an empty partition must not decide a column's type."""
    return pa.schema(
        [(c, pa.string() if c in _STRINGS else _TYPES.get(c, pa.float64())) for c in columns]
    )


EVENT_SCHEMA = _schema(EVENT_COLUMNS)
HOURLY_SCHEMA = _schema(HOURLY_COLUMNS)


def touched_dates(
    ctx: StageContext, day: date, stage: str = STAGE
) -> tuple[list[date], int | None]:
    """Event dates of silver rows ingested on ``day`` (the day itself and the dates its late
    events belong to, as far back as the lateness horizon silver admits), and the silver
    version read. ``stage`` names the caller in errors."""
    loc = locations(ctx.settings)
    table = lake.delta_table(ctx.settings, loc.silver_events)
    if table is None:
        raise StageInputError(f"{stage} {day}: no silver table at {loc.silver_events}")
    horizon = ctx.settings.max_lateness_days
    ingested = table.to_pandas(
        filters=[
            (
                "event_date",
                "in",
                [(day - timedelta(days=k)).isoformat() for k in range(horizon + 1)],
            )
        ],
        columns=["event_date", "ingest_date"],
    )
    dates = sorted(set(ingested.loc[ingested["ingest_date"] == day, "event_date"]))
    if not dates:
        raise StageInputError(
            f"{stage} {day}: silver has no rows ingested on {day}; run ingest..silver first"
        )
    return dates, table.version()


def _to_utc(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    ts = pd.to_datetime(frame[column], utc=True)
    return frame.assign(**{column: ts})


def build_day(ctx: StageContext, day: date) -> MLResult:
    started = time.monotonic()
    settings, loc = ctx.settings, locations(ctx.settings)
    result = MLResult(STAGE, day, ctx.run_id)
    dates, silver_version = touched_dates(ctx, day)
    events_written = hourly_written = 0
    skipped: dict[str, int] = {}
    for target in dates:
        context = [target - timedelta(days=k) for k in range(CONTEXT_DAYS, -1, -1)]
        silver, _ = lake.read_delta(
            settings,
            loc.silver_events,
            partition="event_date",
            values=context,
            columns=list(SILVER_COLUMNS),
            version=silver_version,
        )
        feats = event_features(_to_utc(silver, "event_ts"), target)
        for device, readings in too_few_readings(silver, target).items():
            skipped[device] = skipped.get(device, 0) + readings
        feats["_source_version"] = int(silver_version or 0)
        result.versions["features_events"] = lake.replace_delta_partitions(
            settings, loc.features_events, feats, EVENT_SCHEMA, "event_date", [target]
        )
        events_written += len(feats)

        gold, snapshot = read_gold_hours(ctx, target)
        hourly = hourly_features(gold, target)
        hourly["_source_version"] = int(snapshot or 0)
        result.versions["features_hourly"] = lake.replace_delta_partitions(
            settings, loc.features_hourly, hourly, HOURLY_SCHEMA, "event_date", [target]
        )
        hourly_written += len(hourly)
    result.versions["silver"] = int(silver_version or 0)
    result.counts = {
        "event_dates": len(dates),
        "event_feature_rows": events_written,
        "hourly_feature_rows": hourly_written,
        "events_without_features": sum(skipped.values()),
    }
    if skipped:
        listed = ", ".join(f"{d} ({n})" for d, n in sorted(skipped.items())[:5])
        more = f" and {len(skipped) - 5} more devices" if len(skipped) > 5 else ""
        result.note = f"under {MIN_READINGS} readings, no features yet: {listed}{more}"
    result.seconds = time.monotonic() - started
    return result


def read_gold_hours(ctx: StageContext, day: date) -> tuple[pd.DataFrame, int | None]:
    from pyiceberg.expressions import In

    loc = locations(ctx.settings)
    days = [(day - timedelta(days=1)).isoformat(), day.isoformat()]
    gold, snapshot = lake.read_iceberg(
        ctx.settings, loc.iceberg_warehouse, loc.gold_device_hourly, In("event_date", days)
    )
    if gold.empty:
        return gold, snapshot
    gold = _to_utc(gold, "hour_start")
    return gold.sort_values(["device_id", "hour_start"]), snapshot


def run_interval(ctx: StageContext) -> list[MLResult]:
    return [build_day(ctx, day) for day in ctx.days()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
