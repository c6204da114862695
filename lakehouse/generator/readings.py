"""One day's clean signal: every device's readings with a daily cycle, noise and labelled
anomalies (spikes, drifts, stuck sensors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from lakehouse.events import AnomalyKind
from lakehouse.generator.config import (
    DAY_MS,
    P_ANOMALY,
    P_NOISE,
    PEAK_SECOND,
    UNIX_EPOCH,
    GeneratorConfig,
    random_stream,
)
from lakehouse.generator.fleet import Device

# Anomaly codes in the per-reading label array (0 = normal).
KINDS: tuple[AnomalyKind, ...] = (AnomalyKind.SPIKE, AnomalyKind.DRIFT, AnomalyKind.STUCK)
SPIKE, DRIFT, STUCK = 1, 2, 3


@dataclass(frozen=True)
class CleanDay:
    """Every reading of one day, sorted by (timestamp, device index)."""

    day: date
    dev: np.ndarray  # device index
    ts_ms: np.ndarray  # milliseconds since midnight UTC
    value: np.ndarray  # rounded to the sensor's decimals, within the valid range
    battery: np.ndarray
    kind: np.ndarray  # 0 normal, else SPIKE/DRIFT/STUCK

    def __len__(self) -> int:
        return len(self.dev)


def _place(occupied: np.ndarray, length: int, rng: np.random.Generator) -> int | None:
    """A start for a window of ``length`` readings not touching other windows, or None."""
    n = len(occupied)
    if length + 2 > n:
        return None
    for _ in range(25):
        start = int(rng.integers(1, n - length))  # [1, n-length-1]: one free reading each side
        if not occupied[start - 1 : start + length + 1].any():
            occupied[start : start + length] = True
            return start
    return None


def _device_day(
    cfg: GeneratorConfig, dev: Device, day: date
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sensor = dev.sensor
    step_ms = cfg.reading_seconds * 1000
    ts_ms = np.arange(0, DAY_MS, step_ms, dtype=np.int64) + dev.ts_offset_ms
    ts_ms = ts_ms[ts_ms < DAY_MS]
    n = len(ts_ms)
    seconds = ts_ms / 1000.0
    level = sensor.baseline + dev.offset
    season = sensor.daily_amplitude * np.cos(2 * np.pi * (seconds - PEAK_SECOND) / 86_400.0)
    noise_rng = random_stream(cfg, day.toordinal(), dev.index, P_NOISE)
    raw = level + season + noise_rng.normal(0.0, dev.noise, n)
    raw = np.clip(raw, sensor.min_valid, sensor.max_valid)
    kind = np.zeros(n, dtype=np.int8)

    rng = random_stream(cfg, day.toordinal(), dev.index, P_ANOMALY)
    occupied = np.zeros(n, dtype=bool)
    per_hour = 3600.0 / cfg.reading_seconds

    def fits(values: np.ndarray) -> bool:
        return bool(((values >= sensor.min_valid) & (values <= sensor.max_valid)).all())

    for _ in range(rng.poisson(cfg.drifts_per_device_day)):
        length = max(2, round(rng.uniform(2.0, 6.0) * per_hour))
        size, sign = rng.uniform(3.0, 6.0) * dev.noise, rng.choice((-1.0, 1.0))
        start = _place(occupied, length, rng)
        if start is None:
            continue
        ramp = size * np.arange(1, length + 1) / length
        window = slice(start, start + length)
        if not fits(raw[window] + sign * ramp):
            sign = -sign
        raw[window] = raw[window] + sign * ramp
        kind[window] = DRIFT
    stuck_windows = []
    for _ in range(rng.poisson(cfg.stucks_per_device_day)):
        length = max(2, round(rng.uniform(20.0, 60.0) * per_hour / 60.0))
        start = _place(occupied, length + 1, rng)  # the anchor reading plus the frozen ones
        if start is not None:
            stuck_windows.append((start, length))
            kind[start + 1 : start + 1 + length] = STUCK
    for _ in range(rng.poisson(cfg.spikes_per_device_day)):
        length = int(rng.integers(1, 3))
        sizes = rng.uniform(3.0, 6.0, length) * dev.noise
        sign = rng.choice((-1.0, 1.0))
        start = _place(occupied, length, rng)
        if start is None:
            continue
        window = slice(start, start + length)
        if not fits(raw[window] + sign * sizes):
            sign = -sign
        raw[window] = raw[window] + sign * sizes
        kind[window] = SPIKE

    value = np.clip(np.round(raw, sensor.decimals), sensor.min_valid, sensor.max_valid)
    for start, length in stuck_windows:
        value[start + 1 : start + 1 + length] = value[start]

    epoch_s = (day - UNIX_EPOCH).days * 86_400.0 + seconds
    cycle = (epoch_s / (dev.battery_period_days * 86_400.0) + dev.battery_phase) % 1.0
    battery = (100 - np.floor(80.0 * cycle)).astype(np.int64)
    return ts_ms, value, battery, kind


def clean_day(cfg: GeneratorConfig, fleet: list[Device], day: date) -> CleanDay:
    parts = [_device_day(cfg, d, day) for d in fleet]
    dev = np.concatenate([np.full(len(p[0]), i, dtype=np.int64) for i, p in enumerate(parts)])
    ts_ms = np.concatenate([p[0] for p in parts])
    order = np.lexsort((dev, ts_ms))
    return CleanDay(
        day=day,
        dev=dev[order],
        ts_ms=ts_ms[order],
        value=np.concatenate([p[1] for p in parts])[order],
        battery=np.concatenate([p[2] for p in parts])[order],
        kind=np.concatenate([p[3] for p in parts])[order],
    )
