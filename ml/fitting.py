"""Robust fits shared by the event and hourly features: a level + daily harmonic fitted by
least squares that ignores outliers, the noise scale from first differences, and runs of
repeated values."""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_SECONDS = 86_400.0
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


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
