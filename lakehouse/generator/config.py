"""What the generator produces (``GeneratorConfig``), its default bad-input rates, and the seeded
random streams every part draws from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType

import numpy as np

from lakehouse.events import REASON_CODES, BadInput
from lakehouse.settings import Settings

DEFAULT_BAD_RATES: Mapping[BadInput, float] = MappingProxyType(
    {
        BadInput.MALFORMED_JSON: 0.002,
        BadInput.MISSING_FIELD: 0.002,
        BadInput.WRONG_TYPE: 0.002,
        BadInput.IMPOSSIBLE_VALUE: 0.002,
        BadInput.UNKNOWN_DEVICE: 0.001,
        BadInput.FUTURE_TIMESTAMP: 0.001,
        BadInput.INVALID_KEY: 0.001,
        BadInput.STALE_TIMESTAMP: 0.001,
        BadInput.DUPLICATE: 0.005,
        BadInput.LATE: 0.003,
    }
)
# The classes that replace a clean event with a line silver must reject, in selection order.
REJECTED: tuple[BadInput, ...] = tuple(BadInput(r) for r in REASON_CODES)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
HOURS = 24
LATE_HOURS = 3  # late events of D-1 arrive in D's hours 00..LATE_HOURS-1
PEAK_SECOND = 15 * 3600  # daily cycle peaks mid-afternoon (15:00 UTC)
MAX_TS_OFFSET_MS = 5_000  # per-device clock phase: a few seconds past the reading grid
UNIX_EPOCH = date(1970, 1, 1)

# Seed purposes: one independent random stream per (seed, day, device, purpose).
P_REGISTRY = 1
P_NOISE = 2
P_ANOMALY = 3
P_LATE = 10
P_REJECT = 11
P_CONTENT = 12
P_DUPLICATE = 13
P_RESEND = 14
P_PLACE = 15


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generator produces; a day's output is a pure function of (config, day).

    ``bad_rates`` are fractions of a day's clean events (keys: ``BadInput``; plain strings equal
    to a ``BadInput`` value are accepted); missing keys take ``DEFAULT_BAD_RATES``. A rate above
    zero always injects at least one line of its class. Anomaly rates are expected counts per
    device per day (Poisson); the defaults label 2-3 % of readings.
    """

    seed: int = 42
    devices: int = 40
    sites: int = 4
    reading_seconds: int = 60
    bad_rates: Mapping[BadInput, float] = field(
        default_factory=lambda: DEFAULT_BAD_RATES, hash=False
    )
    spikes_per_device_day: float = 3.0
    drifts_per_device_day: float = 0.12
    stucks_per_device_day: float = 0.35

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.devices < 1 or self.sites < 1:
            raise ValueError(f"devices and sites must be >= 1, got {self.devices}/{self.sites}")
        if not 1 <= self.reading_seconds <= 86_400:
            raise ValueError(f"reading_seconds must be in 1..86400, got {self.reading_seconds}")
        rates = dict(DEFAULT_BAD_RATES)
        for key, value in self.bad_rates.items():
            try:
                kind = BadInput(key)
            except ValueError:
                known = ", ".join(b.value for b in BadInput)
                raise ValueError(
                    f"unknown bad input kind {key!r} in bad_rates (known: {known})"
                ) from None
            rate = float(value)
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"bad_rates[{kind.value!r}] must be in [0, 1), got {value!r}")
            rates[kind] = rate
        object.__setattr__(self, "bad_rates", MappingProxyType(rates))
        withheld = sum(rates[k] for k in (*REJECTED, BadInput.LATE))
        if withheld > 0.5:
            raise ValueError(f"bad_rates: rejected + late classes sum to {withheld:.3f} > 0.5")
        for name in ("spikes_per_device_day", "drifts_per_device_day", "stucks_per_device_day"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> GeneratorConfig:
        return cls(
            seed=settings.seed,
            devices=settings.devices,
            sites=settings.sites,
            reading_seconds=settings.reading_seconds,
            bad_rates=dict(settings.bad_rates),
        )

    def with_rates(self, **rates: float) -> GeneratorConfig:
        """A copy with some bad-input rates replaced (keyword = ``BadInput`` value)."""
        return replace(self, bad_rates={**self.bad_rates, **rates})


def random_stream(
    cfg: GeneratorConfig, ordinal: int, device: int, purpose: int
) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, ordinal, device, purpose]))
