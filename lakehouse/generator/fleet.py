"""The fixed device fleet: ids, sites, sensor types and per-device character."""

from __future__ import annotations

import json
from dataclasses import dataclass

from lakehouse.events import SENSOR_TYPES, SensorType
from lakehouse.generator.config import MAX_TS_OFFSET_MS, P_REGISTRY, GeneratorConfig, random_stream


@dataclass(frozen=True)
class Device:
    index: int
    device_id: str
    site_id: str
    sensor: SensorType
    offset: float  # per-device baseline offset (sensor units)
    noise: float  # standard deviation of this device's measurement noise
    ts_offset_ms: int  # fixed phase past the reading grid
    battery_period_days: float  # days from full to replacement
    battery_phase: float  # position in the battery cycle at the Unix epoch, in [0, 1)

    @property
    def sensor_type(self) -> str:
        return self.sensor.name

    @property
    def unit(self) -> str:
        return self.sensor.unit


def device_registry(cfg: GeneratorConfig) -> list[Device]:
    """The fixed fleet: ``dev-0000``…, sites ``site-00``…, sensor types cycling."""
    sensors = list(SENSOR_TYPES.values())
    fleet = []
    for i in range(cfg.devices):
        sensor = sensors[i % len(sensors)]
        rng = random_stream(cfg, 0, i, P_REGISTRY)
        fleet.append(
            Device(
                index=i,
                device_id=f"dev-{i:04d}",
                site_id=f"site-{i % cfg.sites:02d}",
                sensor=sensor,
                offset=float(rng.uniform(-0.3, 0.3) * sensor.daily_amplitude),
                noise=float(sensor.noise * rng.uniform(0.7, 1.4)),
                ts_offset_ms=int(
                    rng.integers(0, min(MAX_TS_OFFSET_MS, cfg.reading_seconds * 1000))
                ),
                battery_period_days=float(rng.uniform(60.0, 180.0)),
                battery_phase=float(rng.uniform(0.0, 1.0)),
            )
        )
    return fleet


def registry_lines(cfg: GeneratorConfig) -> list[str]:
    return [
        json.dumps(
            {
                "device_id": d.device_id,
                "site_id": d.site_id,
                "sensor_type": d.sensor.name,
                "unit": d.sensor.unit,
                "min_valid": d.sensor.min_valid,
                "max_valid": d.sensor.max_valid,
            }
        )
        for d in device_registry(cfg)
    ]
