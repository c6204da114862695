"""Per-event features from silver (the table ``features/events``); see ml/features.py for
what each column means."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.fitting import EPOCH, noise_scale, readings_per_hour, robust_harmonic_fit, run_lengths

CONTEXT_DAYS = 2  # days before an event date that feed its baseline fit
MIN_READINGS = 12  # fewer readings in the context: no baseline, no features
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
# Silver's columns an event's features are computed from, and the feature table's columns.
_IDENTITY: tuple[str, ...] = (
    "event_id", "device_id", "site_id", "sensor_type", "event_ts", "event_date",
)  # fmt: skip
SILVER_COLUMNS: tuple[str, ...] = (*_IDENTITY, "value")
EVENT_COLUMNS: tuple[str, ...] = (
    *_IDENTITY,
    "hour_of_day",
    "value",
    "baseline",
    "noise_scale",
    *EVENT_FEATURES,
    "run_length",
    "_source_version",
)


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
