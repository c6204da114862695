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
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from lakehouse.context import StageContext, StageInputError, interval_parser, parse_interval
from lakehouse.tables import locations
from ml import lake
from ml.stage import MLResult, entrypoint

STAGE = "features"
DAY_SECONDS = 86_400.0
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
CONTEXT_DAYS = 2  # days before an event date that feed its baseline fit
MIN_READINGS = 12  # fewer readings in the context: no baseline, no features
MIN_WINDOW_HOURS = 18  # of the trailing 24 needed for an hourly profile fit

SILVER_COLUMNS: tuple[str, ...] = (
    "event_id",
    "device_id",
    "site_id",
    "sensor_type",
    "event_ts",
    "event_date",
    "value",
)
EVENT_FEATURES: tuple[str, ...] = (
    "resid_z",
    "local_z",
    "level_z",
    "level_trailing_z",
    "level_leading_z",
    "diff_z",
    "rolling_std_z",
    "stuck_length",
)
HOURLY_FEATURES: tuple[str, ...] = (
    "hour_of_day",
    "dev_1",
    "dev_2",
    "dev_3",
    "dev_24",
    "amplitude_z",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "device_id",
    "site_id",
    "sensor_type",
    "event_ts",
    "event_date",
    "hour_of_day",
    "value",
    "baseline",
    "noise_scale",
    *EVENT_FEATURES,
    "run_length",
    "_source_version",
)
HOURLY_COLUMNS: tuple[str, ...] = (
    "device_id",
    "site_id",
    "sensor_type",
    "hour_start",
    "event_date",
    "day_of_week",
    *HOURLY_FEATURES,
    "lag_1",
    "lag_24",
    "profile",
    "scale",
    "window_hours",
    "actual",
    "_source_version",
)


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


# --------------------------------------------------------------------------- pure: events


def harmonic_design(seconds: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * seconds / DAY_SECONDS
    return np.column_stack([np.ones_like(seconds), np.cos(angle), np.sin(angle)])


def robust_coefficients(design: np.ndarray, values: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Least squares refitted without points beyond 2.5 robust standard deviations, so
    anomalies do not pull the fit towards themselves."""
    keep = np.isfinite(values)
    coef = np.zeros(design.shape[1])
    for _ in range(iterations):
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        resid = values - design @ coef
        spread = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        if spread <= 0 or (np.abs(resid) < 2.5 * spread).sum() <= design.shape[1]:
            break
        keep = np.abs(resid) < 2.5 * spread
    return coef


def robust_harmonic_fit(seconds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Level + daily harmonic (sensors follow a daily cycle), fitted robustly."""
    design = harmonic_design(seconds)
    return design @ robust_coefficients(design, values)


def noise_scale(values: np.ndarray, floor: float = 1e-6) -> float:
    """Noise standard deviation from the MAD of first differences."""
    diffs = np.diff(values)
    if len(diffs) == 0:
        return floor
    mad = np.median(np.abs(diffs - np.median(diffs)))
    return max(1.4826 * mad / np.sqrt(2.0), floor)


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each reading: the length of the run of identical values it belongs to, and its
    position in that run (1 = first)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.r_[True, values[1:] != values[:-1]]
    run_id = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    position = np.arange(len(values)) - first[run_id] + 1
    length = np.bincount(run_id)[run_id]
    return length, position


def readings_per_hour(ts: pd.Series) -> int:
    step = ts.diff().dt.total_seconds().median()
    if not np.isfinite(step) or step <= 0:
        return 3
    return max(3, round(3600.0 / step))


def device_event_features(device: pd.DataFrame) -> pd.DataFrame:
    """Features of one device's readings (any order in, time order out)."""
    device = device.sort_values("event_ts", kind="stable")
    values = device["value"].to_numpy(dtype=float)
    seconds = ((device["event_ts"] - EPOCH) / pd.Timedelta(seconds=1)).to_numpy(float)
    baseline = robust_harmonic_fit(seconds, values)
    scale = noise_scale(values)
    resid_z = (values - baseline) / scale
    window = readings_per_hour(device["event_ts"])
    series = pd.Series(values)
    resid = pd.Series(resid_z)
    length, position = run_lengths(values)
    return device.assign(
        hour_of_day=device["event_ts"].dt.hour.astype("int32"),
        baseline=baseline,
        noise_scale=scale,
        resid_z=resid_z,
        local_z=(values - series.rolling(5, center=True, min_periods=1).median().to_numpy())
        / scale,
        level_z=resid.rolling(window, center=True, min_periods=1).mean().to_numpy(),
        level_trailing_z=resid.rolling(window, min_periods=1).mean().to_numpy(),
        level_leading_z=resid[::-1].rolling(window, min_periods=1).mean().to_numpy()[::-1],
        diff_z=np.r_[0.0, np.diff(values)] / scale,
        rolling_std_z=series.rolling(5, center=True, min_periods=2).std().fillna(0).to_numpy()
        / scale,
        run_length=length.astype("int64"),
        stuck_length=np.where(position >= 2, length, 1).astype("int64"),
    )


def event_features(silver: pd.DataFrame, day: date) -> pd.DataFrame:
    """Features of the events of ``day`` from silver rows of ``day`` and its context days."""
    out = []
    for _, device in silver.groupby("device_id", sort=True):
        if len(device) >= MIN_READINGS and (device["event_date"] == day).any():
            feats = device_event_features(device)
            out.append(feats[feats["event_date"] == day])
    if not out:
        return pd.DataFrame(columns=[c for c in EVENT_COLUMNS if c != "_source_version"])
    frame = pd.concat(out, ignore_index=True)
    return frame[[c for c in EVENT_COLUMNS if c != "_source_version"]]


def too_few_readings(silver: pd.DataFrame, day: date) -> dict[str, int]:
    """Device -> readings of ``day`` that get no features: fewer than MIN_READINGS in the
    device's context days (a device that came online at the end of the day). Named in the
    stage's note so they are never left out silently; the next day's features cover them."""
    counts = silver.groupby("device_id")["event_date"].agg(
        total="size", on_day=lambda d: int((d == day).sum())
    )
    short = counts[(counts["total"] < MIN_READINGS) & (counts["on_day"] > 0)]
    return {str(k): int(v) for k, v in short["on_day"].sort_index().items()}


# --------------------------------------------------------------------------- pure: hours


def hourly_design(hour_index: np.ndarray) -> np.ndarray:
    """Harmonic design for hourly means (each stands for the middle of its hour)."""
    return harmonic_design((hour_index + 0.5) * 3600.0)


def device_hourly_features(device: pd.DataFrame, day: date) -> pd.DataFrame:
    """Features for every hour of ``day`` of one device, from its hourly rows up to that day."""
    first = pd.Timestamp(day, tz="UTC")
    hours = pd.date_range(first - pd.Timedelta(hours=24), periods=48, freq="h")
    by_hour = device.set_index("hour_start").reindex(hours)
    mean = by_hour["mean_value"].to_numpy(dtype=float)
    spread = by_hour["stddev_value"].to_numpy(dtype=float)
    index = (hours - EPOCH) // pd.Timedelta(hours=1)
    design = hourly_design(np.asarray(index, dtype=float))
    rows = []
    for i in range(24, 48):
        window = slice(i - 24, i)
        ok = np.isfinite(mean[window])
        row = {
            "hour_start": hours[i],
            "lag_1": mean[i - 1],
            "lag_2": mean[i - 2],
            "lag_3": mean[i - 3],
            "lag_24": mean[i - 24],
            "actual": mean[i],
            "window_hours": int(ok.sum()),
        }
        spreads = spread[window][np.isfinite(spread[window])]
        scale = spreads.mean() if len(spreads) else np.nan
        if ok.sum() >= MIN_WINDOW_HOURS and np.isfinite(scale) and scale > 0:
            coef = robust_coefficients(design[window][ok], mean[window][ok])
            fitted = design[window] @ coef
            row |= {
                "profile": float(design[i] @ coef),
                "scale": float(scale),
                "dev_1": (mean[i - 1] - fitted[-1]) / scale,
                "dev_2": (mean[i - 2] - fitted[-2]) / scale,
                "dev_3": (mean[i - 3] - fitted[-3]) / scale,
                "dev_24": (mean[i - 24] - fitted[0]) / scale,
                "amplitude_z": float(np.hypot(coef[1], coef[2]) / scale),
            }
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("profile", "scale", "dev_1", "dev_2", "dev_3", "dev_24", "amplitude_z"):
        if column not in frame:
            frame[column] = np.nan
    known = device.iloc[-1]
    return frame.assign(
        device_id=known["device_id"],
        site_id=known["site_id"],
        sensor_type=known["sensor_type"],
        event_date=day,
        hour_of_day=frame["hour_start"].dt.hour.astype("int32"),
        day_of_week=frame["hour_start"].dt.day_of_week.astype("int32"),
    )


def hourly_features(gold: pd.DataFrame, day: date) -> pd.DataFrame:
    """One row per (device with data on ``day`` or the day before, hour of ``day``)."""
    columns = [c for c in HOURLY_COLUMNS if c != "_source_version"]
    if gold.empty:
        return pd.DataFrame(columns=columns)
    out = [device_hourly_features(d, day) for _, d in gold.groupby("device_id", sort=True)]
    frame = pd.concat(out, ignore_index=True)[columns]
    return frame.astype({c: "float64" for c in (*HOURLY_FEATURES[1:], "lag_1", "lag_24")})


# --------------------------------------------------------------------------- I/O edge


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
