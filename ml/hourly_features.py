"""Per device-hour features from gold hourly means (the table ``features/device_hourly``); see
ml/features.py for what each column means."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from ml.fitting import EPOCH, harmonic_design, robust_coefficients

MIN_WINDOW_HOURS = 18  # of the trailing 24 needed for an hourly profile fit
HOURLY_FEATURES: tuple[str, ...] = (
    "hour_of_day",
    "dev_1",
    "dev_2",
    "dev_3",
    "dev_24",
    "amplitude_z",
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
