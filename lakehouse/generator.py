"""Deterministic synthetic IoT events, with labelled anomalies and every class of bad input.

The data interval is one UTC day. Generating day D produces 24 hourly objects

    {raw_events}/ingest_date=D/ingest_hour=HH/part-00000.jsonl.gz       (gzip JSON lines)

plus the anomaly ground truth (kept apart from the events)

    {raw_ground_truth}/event_date=D/part-00000.jsonl.gz

and the device registry (``raw_devices``, plain JSON lines).

Determinism: everything is a pure function of (config, day). Random numbers come from numpy
``default_rng`` seeded with a ``SeedSequence`` of (seed, day ordinal, device index, purpose), so
days and devices are independent of each other and of how many days are generated; gzip is
written with ``mtime=0`` and no file name; there is no wall clock anywhere. Re-running a day
rewrites byte-identical objects.

What day D's batch delivers:

* every clean event of D, in the ingest hour of its timestamp, except a sample withheld as late
  (delivered with D+1, in its hours 00-02);
* D-1's withheld late events, in hours 00-02 (generating D recomputes D-1's plan for this);
* exact duplicate re-sends: byte-identical copies of some of D's delivered lines, in the same or
  a later hour, and a few byte-identical copies of lines delivered with D-1;
* bad lines, each replacing one clean event of D (the clean version is not delivered):
  malformed JSON, a missing required field, a wrong type, an impossible value, an unknown device,
  a future timestamp, an invalid key (a blank or whitespace id, or one holding an invisible
  character) and a stale timestamp (a clock reset to 1970). Anomaly-labelled events are never
  mutated or withheld.

Reconciliation of one batch (``DayBatch``)::

    line_count == len(valid_events) - cross_interval_resends
                  + injected["duplicate_resend"] + sum(injected[r] for r in REASON_CODES)

``valid_events`` holds D-1's re-sent events once each (silver already has them), and
``injected["duplicate_resend"]`` counts every re-sent copy, in-day and cross-interval.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from types import MappingProxyType

import numpy as np

from lakehouse import storage
from lakehouse.events import REASON_CODES, SENSOR_TYPES, AnomalyKind, BadInput, SensorType
from lakehouse.settings import Settings
from lakehouse.tables import (
    events_prefix,
    ground_truth_prefix,
    ground_truth_uri,
    hour_uri,
    locations,
)

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
_P_REGISTRY = 1
_P_NOISE = 2
_P_ANOMALY = 3
_P_LATE = 10
_P_REJECT = 11
_P_CONTENT = 12
_P_DUPLICATE = 13
_P_RESEND = 14
_P_PLACE = 15

# Anomaly codes in the per-reading label array (0 = normal).
_KINDS: tuple[AnomalyKind, ...] = (AnomalyKind.SPIKE, AnomalyKind.DRIFT, AnomalyKind.STUCK)
_SPIKE, _DRIFT, _STUCK = 1, 2, 3


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


def _rng(cfg: GeneratorConfig, ordinal: int, device: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, ordinal, device, purpose]))


def device_registry(cfg: GeneratorConfig) -> list[Device]:
    """The fixed fleet: ``dev-0000``…, sites ``site-00``…, sensor types cycling."""
    sensors = list(SENSOR_TYPES.values())
    fleet = []
    for i in range(cfg.devices):
        sensor = sensors[i % len(sensors)]
        rng = _rng(cfg, 0, i, _P_REGISTRY)
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


# --------------------------------------------------------------------------- one day's signal


@dataclass(frozen=True)
class _CleanDay:
    """Every reading of one day, sorted by (timestamp, device index)."""

    day: date
    dev: np.ndarray  # device index
    ts_ms: np.ndarray  # milliseconds since midnight UTC
    value: np.ndarray  # rounded to the sensor's decimals, within the valid range
    battery: np.ndarray
    kind: np.ndarray  # 0 normal, else _SPIKE/_DRIFT/_STUCK

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
    noise_rng = _rng(cfg, day.toordinal(), dev.index, _P_NOISE)
    raw = level + season + noise_rng.normal(0.0, dev.noise, n)
    raw = np.clip(raw, sensor.min_valid, sensor.max_valid)
    kind = np.zeros(n, dtype=np.int8)

    rng = _rng(cfg, day.toordinal(), dev.index, _P_ANOMALY)
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
        kind[window] = _DRIFT
    stuck_windows = []
    for _ in range(rng.poisson(cfg.stucks_per_device_day)):
        length = max(2, round(rng.uniform(20.0, 60.0) * per_hour / 60.0))
        start = _place(occupied, length + 1, rng)  # the anchor reading plus the frozen ones
        if start is not None:
            stuck_windows.append((start, length))
            kind[start + 1 : start + 1 + length] = _STUCK
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
        kind[window] = _SPIKE

    value = np.clip(np.round(raw, sensor.decimals), sensor.min_valid, sensor.max_valid)
    for start, length in stuck_windows:
        value[start + 1 : start + 1 + length] = value[start]

    epoch_s = (day - UNIX_EPOCH).days * 86_400.0 + seconds
    cycle = (epoch_s / (dev.battery_period_days * 86_400.0) + dev.battery_phase) % 1.0
    battery = (100 - np.floor(80.0 * cycle)).astype(np.int64)
    return ts_ms, value, battery, kind


def _clean_day(cfg: GeneratorConfig, fleet: list[Device], day: date) -> _CleanDay:
    parts = [_device_day(cfg, d, day) for d in fleet]
    dev = np.concatenate([np.full(len(p[0]), i, dtype=np.int64) for i, p in enumerate(parts)])
    ts_ms = np.concatenate([p[0] for p in parts])
    order = np.lexsort((dev, ts_ms))
    return _CleanDay(
        day=day,
        dev=dev[order],
        ts_ms=ts_ms[order],
        value=np.concatenate([p[1] for p in parts])[order],
        battery=np.concatenate([p[2] for p in parts])[order],
        kind=np.concatenate([p[3] for p in parts])[order],
    )


# --------------------------------------------------------------------------- rendering


def _format_ts(day: date, ts_ms: np.ndarray) -> list[str]:
    stamps = np.datetime64(day.isoformat(), "ms") + ts_ms.astype("timedelta64[ms]")
    return [s + "Z" for s in np.datetime_as_string(stamps, unit="ms").tolist()]


@dataclass(frozen=True)
class _Rendered:
    """Text of some readings of one day, as parallel lists (position j <-> reading idx[j])."""

    dev: list[int]
    event_id: list[str]
    event_ts: list[str]
    value: list[str]  # JSON number text
    battery: list[int]
    line: list[str]


def _render(
    cfg: GeneratorConfig, fleet: list[Device], day: _CleanDay, idx: np.ndarray
) -> _Rendered:
    """The clean JSON line of each reading in ``idx``.

    ``event_id`` is the 16-byte BLAKE2b hex digest of ``"{seed}|{device_id}|{event_ts}"``.
    Lines are spelled exactly as ``json.dumps`` would (", " and ": " separators), with
    ``value`` printed to the sensor's decimals.
    """
    ts_list = _format_ts(day.day, day.ts_ms[idx])
    devs = day.dev[idx].tolist()
    values = day.value[idx].tolist()
    batteries = day.battery[idx].tolist()
    per_device = [
        (
            f"{cfg.seed}|{d.device_id}|",
            f'", "device_id": "{d.device_id}", "sensor_type": "{d.sensor.name}", "event_ts": "',
            f".{d.sensor.decimals}f",
            f', "unit": "{d.sensor.unit}", "battery_pct": ',
        )
        for d in fleet
    ]
    blake = hashlib.blake2b
    ids, texts, lines = [], [], []
    for d, ts, v, b in zip(devs, ts_list, values, batteries, strict=True):
        key, head, spec, tail = per_device[d]
        eid = blake((key + ts).encode(), digest_size=16).hexdigest()
        text = format(v, spec)
        ids.append(eid)
        texts.append(text)
        lines.append(f'{{"event_id": "{eid}{head}{ts}", "value": {text}{tail}{b}}}')
    return _Rendered(devs, ids, ts_list, texts, batteries, lines)


def _dumps(fields: list[tuple[str, str]]) -> str:
    """A JSON object from (key, already-encoded JSON value) pairs, json.dumps' spacing."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields) + "}"


def _fields(fleet: list[Device], r: _Rendered, j: int) -> list[tuple[str, str]]:
    device = fleet[r.dev[j]]
    return [
        ("event_id", f'"{r.event_id[j]}"'),
        ("device_id", f'"{device.device_id}"'),
        ("sensor_type", f'"{device.sensor.name}"'),
        ("event_ts", f'"{r.event_ts[j]}"'),
        ("value", r.value[j]),
        ("unit", f'"{device.sensor.unit}"'),
        ("battery_pct", str(r.battery[j])),
    ]


def _dicts(fleet: list[Device], r: _Rendered, positions: list[int]) -> list[dict]:
    """The parsed form of the clean lines at ``positions`` (what json.loads would return)."""
    meta = [
        (d.device_id, d.sensor.name, d.sensor.unit, float if d.sensor.decimals else int)
        for d in fleet
    ]
    ids, stamps, texts, devs, batteries = r.event_id, r.event_ts, r.value, r.dev, r.battery
    out = []
    for j in positions:
        device_id, sensor_type, unit, number = meta[devs[j]]
        out.append(
            {
                "event_id": ids[j],
                "device_id": device_id,
                "sensor_type": sensor_type,
                "event_ts": stamps[j],
                "value": number(texts[j]),
                "unit": unit,
                "battery_pct": batteries[j],
            }
        )
    return out


def _mutate(
    kind: BadInput,
    fields: list[tuple[str, str]],
    day: date,
    ts_ms: int,
    sensor: SensorType,
    cfg: GeneratorConfig,
    rng: np.random.Generator,
) -> str:
    """One bad line of class ``kind`` made from a clean event's fields."""
    values = dict(fields)
    if kind is BadInput.MALFORMED_JSON:
        line = _dumps(fields)
        if rng.random() < 0.5:  # truncated: a killed writer or a cut connection
            return line[: int(rng.integers(1, len(line)))]
        return line.replace('", "', '" "', 1)  # garbled: a separator lost in transit
    if kind is BadInput.MISSING_FIELD:
        missing = str(rng.choice(["event_id", "device_id", "event_ts", "value"]))
        return _dumps([(k, v) for k, v in fields if k != missing])
    if kind is BadInput.WRONG_TYPE:
        variant = int(rng.integers(0, 3))
        if variant == 0:
            values["value"] = '"n/a"'
        elif variant == 1:
            values["value"] = f'"{values["value"]}"'
        else:
            epoch_ms = (day - UNIX_EPOCH).days * DAY_MS + ts_ms
            values["event_ts"] = str(epoch_ms)
    elif kind is BadInput.IMPOSSIBLE_VALUE:
        span = sensor.max_valid - sensor.min_valid
        beyond = rng.uniform(0.05, 0.8) * span
        bad = sensor.max_valid + beyond if rng.random() < 0.5 else sensor.min_valid - beyond
        values["value"] = f"{bad:.{sensor.decimals}f}"
    elif kind is BadInput.UNKNOWN_DEVICE:
        values["device_id"] = f'"dev-{cfg.devices + int(rng.integers(0, 1000)):04d}"'
    elif kind is BadInput.FUTURE_TIMESTAMP:
        ahead_ms = int(rng.integers(1, 31)) * DAY_MS + HOUR_MS  # >= 1 day past the hour's end
        stamp = np.datetime64(day.isoformat(), "ms") + np.timedelta64(ts_ms + ahead_ms, "ms")
        values["event_ts"] = f'"{np.datetime_as_string(stamp, unit="ms")}Z"'
    elif kind is BadInput.INVALID_KEY:
        key = str(rng.choice(["event_id", "device_id"]))
        real = json.loads(values[key])
        variants = (
            "",  # blank
            " " * int(rng.integers(1, 4)),  # whitespace only
            f"{real}\u200b",  # the real id and a zero-width space: differs only invisibly
            f"\u00a0{real}",  # a no-break space in front
            f"{real}\t",  # a trailing tab
        )
        values[key] = json.dumps(variants[int(rng.integers(0, len(variants)))])
    elif kind is BadInput.STALE_TIMESTAMP:
        # A device whose clock reset to the epoch: at it, or its uptime since.
        uptime_ms = int(rng.integers(0, 2)) * ts_ms
        stamp = np.datetime64("1970-01-01", "ms") + np.timedelta64(uptime_ms, "ms")
        values["event_ts"] = f'"{np.datetime_as_string(stamp, unit="ms")}Z"'
    else:
        raise ValueError(f"{kind} does not mutate an event")
    return _dumps(list(values.items()))


# --------------------------------------------------------------------------- one day's plan


def _count(rate: float, n: int) -> int:
    return 0 if rate <= 0 else max(1, round(rate * n))


@dataclass(frozen=True)
class _Plan:
    """Which of a day's readings are withheld as late and which become bad lines."""

    clean: _CleanDay
    late: np.ndarray  # sorted indices withheld from this day, delivered with the next
    rejected: dict[int, BadInput]  # index -> class of the bad line replacing it

    def delivered_clean(self) -> np.ndarray:
        """Sorted indices delivered clean with this day (not late, not mutated)."""
        keep = np.ones(len(self.clean), dtype=bool)
        keep[self.late] = False
        keep[np.fromiter(self.rejected, dtype=np.int64, count=len(self.rejected))] = False
        return np.flatnonzero(keep)


def _plan(cfg: GeneratorConfig, fleet: list[Device], day: date) -> _Plan:
    clean = _clean_day(cfg, fleet, day)
    n = len(clean)
    available = clean.kind == 0  # anomaly-labelled readings are never withheld or mutated
    n_late = _count(cfg.bad_rates[BadInput.LATE], n)
    counts = [_count(cfg.bad_rates[k], n) for k in REJECTED]
    if n_late + sum(counts) > int(available.sum()):
        raise ValueError(
            f"{day}: {n_late + sum(counts)} late/bad events requested but only "
            f"{int(available.sum())} normal readings; lower bad_rates or add devices"
        )
    late_rng = _rng(cfg, day.toordinal(), 0, _P_LATE)
    late = np.sort(late_rng.choice(np.flatnonzero(available), n_late, replace=False))
    available[late] = False
    reject_rng = _rng(cfg, day.toordinal(), 0, _P_REJECT)
    picked = reject_rng.choice(np.flatnonzero(available), sum(counts), replace=False).tolist()
    rejected: dict[int, BadInput] = {}
    pos = 0
    for kind, k in zip(REJECTED, counts, strict=True):
        for i in picked[pos : pos + k]:
            rejected[int(i)] = kind
        pos += k
    return _Plan(clean, late, rejected)


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class DayBatch:
    """Everything generated for one day, before any I/O.

    ``files``: hour (0..23) -> lines in file order. ``ground_truth``: labelled anomalies of the
    day, ``{event_id, device_id, event_ts, kind}``. ``valid_events``: the valid events this
    batch delivers, one dict (the raw JSON fields) per event_id: D-1's late arrivals and
    re-sent events first, then D's clean events, each part in (event_ts, device) order.
    ``injected``: lines per ``BadInput`` value delivered in this batch (``late_event`` counts
    arrivals from D-1; ``duplicate_resend`` every re-sent copy). ``withheld_late``: D's events
    held back for D+1. ``cross_interval_resends``: copies of D-1 lines in this batch.
    """

    config: GeneratorConfig
    day: date
    files: dict[int, list[str]]
    ground_truth: list[dict]
    valid_events: list[dict]
    injected: dict[str, int]
    withheld_late: int
    cross_interval_resends: int

    @property
    def line_count(self) -> int:
        return sum(len(lines) for lines in self.files.values())

    def counts(self) -> dict[str, int]:
        return {
            "lines": self.line_count,
            "valid_events": len(self.valid_events),
            "anomalies": len(self.ground_truth),
            "withheld_late": self.withheld_late,
            "cross_interval_resends": self.cross_interval_resends,
            **self.injected,
        }


def _merge(base: list[str], inserts: list[tuple[int, int, str]]) -> list[str]:
    """``base`` with each (slot, seq, line) inserted before base line ``slot``."""
    out: list[str] = []
    done = 0
    for slot, _, line in sorted(inserts):
        out.extend(base[done:slot])
        out.append(line)
        done = max(done, slot)
    out.extend(base[done:])
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a day allocates ~10 objects per event, none cyclic,
    and repeated full collections over them would cost more than the work itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate_day(cfg: GeneratorConfig, day: date) -> DayBatch:
    """Day ``day``'s batch (pure: no I/O, no clock)."""
    with _no_gc():
        return _generate_day(cfg, day)


def _generate_day(cfg: GeneratorConfig, day: date) -> DayBatch:
    fleet = device_registry(cfg)
    plan = _plan(cfg, fleet, day)
    prev = _plan(cfg, fleet, day - timedelta(days=1))
    clean = plan.clean
    ordinal = day.toordinal()
    rendered = _render(cfg, fleet, clean, np.arange(len(clean)))

    # Bad lines replace their clean event in place.
    lines = list(rendered.line)
    content_rng = _rng(cfg, ordinal, 0, _P_CONTENT)
    for i in sorted(plan.rejected):
        sensor = fleet[rendered.dev[i]].sensor
        fields = _fields(fleet, rendered, i)
        ts_ms = int(clean.ts_ms[i])
        lines[i] = _mutate(plan.rejected[i], fields, day, ts_ms, sensor, cfg, content_rng)

    # Base delivery: D's events (minus the late sample) in the hour of their timestamp.
    keep = np.ones(len(clean), dtype=bool)
    keep[plan.late] = False
    kept = np.flatnonzero(keep)
    kept_hour = clean.ts_ms[kept] // HOUR_MS
    bounds = np.searchsorted(kept_hour, np.arange(HOURS + 1)).tolist()
    base = [[lines[i] for i in kept[bounds[h] : bounds[h + 1]].tolist()] for h in range(HOURS)]

    # Insertions per hour: (slot = before which base line, sequence, line).
    inserts: list[list[tuple[int, int, str]]] = [[] for _ in range(HOURS)]
    seq = 0

    def insert(hour: int, slot: int, line: str) -> None:
        nonlocal seq
        seq += 1
        inserts[hour].append((slot, seq, line))

    place_rng = _rng(cfg, ordinal, 0, _P_PLACE)
    prev_late = _render(cfg, fleet, prev.clean, prev.late)
    for line in prev_late.line:
        h = int(place_rng.integers(0, LATE_HOURS))
        insert(h, int(place_rng.integers(0, len(base[h]) + 1)), line)

    n_dup = _count(cfg.bad_rates[BadInput.DUPLICATE], len(clean))
    n_cross = max(1, n_dup // 10) if n_dup >= 2 else 0
    delivered = plan.delivered_clean()
    dup_rng = _rng(cfg, ordinal, 0, _P_DUPLICATE)
    n_in_day = min(n_dup - n_cross, len(delivered))
    sources = np.sort(dup_rng.choice(delivered, n_in_day, replace=False))
    at = np.searchsorted(kept, sources)
    for i, k in zip(sources.tolist(), at.tolist(), strict=True):
        h_src = int(kept_hour[k])
        h = min(HOURS - 1, h_src + int(dup_rng.integers(0, 3)))
        lo = k - bounds[h_src] + 1 if h == h_src else 0  # after the original
        insert(h, int(dup_rng.integers(lo, len(base[h]) + 1)), rendered.line[i])

    resend_rng = _rng(cfg, ordinal, 0, _P_RESEND)
    prev_pool = prev.delivered_clean()
    resent_idx = np.sort(resend_rng.choice(prev_pool, min(n_cross, len(prev_pool)), False))
    resent = _render(cfg, fleet, prev.clean, resent_idx)
    for line in resent.line:
        h = int(resend_rng.integers(0, HOURS))
        insert(h, int(resend_rng.integers(0, len(base[h]) + 1)), line)

    files = {h: _merge(base[h], inserts[h]) for h in range(HOURS)}

    # Valid events: D-1's late arrivals and re-sent events, then D's clean deliveries.
    earlier = _dicts(fleet, prev_late, list(range(len(prev.late))))
    earlier += _dicts(fleet, resent, list(range(len(resent_idx))))
    earlier.sort(key=lambda e: (e["event_ts"], e["device_id"]))
    valid = earlier + _dicts(fleet, rendered, delivered.tolist())

    ground_truth = [
        {
            "event_id": rendered.event_id[i],
            "device_id": fleet[rendered.dev[i]].device_id,
            "event_ts": rendered.event_ts[i],
            "kind": _KINDS[int(clean.kind[i]) - 1].value,
        }
        for i in np.flatnonzero(clean.kind > 0).tolist()
    ]

    injected = {b.value: 0 for b in BadInput}
    for kind in plan.rejected.values():
        injected[kind.value] += 1
    injected[BadInput.DUPLICATE.value] = len(sources) + len(resent_idx)
    injected[BadInput.LATE.value] = len(prev.late)
    return DayBatch(
        config=cfg,
        day=day,
        files=files,
        ground_truth=ground_truth,
        valid_events=valid,
        injected=injected,
        withheld_late=len(plan.late),
        cross_interval_resends=len(resent_idx),
    )


# --------------------------------------------------------------------------- I/O


def _gzip_lines(lines: list[str]) -> bytes:
    text = "".join(line + "\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), compresslevel=3, mtime=0)


def write_day(
    settings: Settings, batch: DayBatch, progress: Callable[[], None] | None = None
) -> tuple[list[str], int]:
    """Replace the day's raw objects with ``batch``; returns (written URIs, event lines).

    New objects are written over the old ones first (one PUT each, so a reader such as a
    concurrent bronze run sees either the old or the new object, never a missing one; with the
    same settings they are byte-identical). Only then are objects left by an earlier run with
    other settings removed from the day's ``ingest_date=`` prefix and ground-truth partition.
    ``progress`` is called once per hourly object written.
    """
    written = []
    for hour in range(HOURS):
        uri = hour_uri(settings, batch.day, hour)
        storage.write_bytes(settings, uri, _gzip_lines(batch.files.get(hour, [])))
        written.append(uri)
        if progress is not None:
            progress()
    uri = ground_truth_uri(settings, batch.day)
    storage.write_bytes(settings, uri, _gzip_lines([json.dumps(g) for g in batch.ground_truth]))
    written.append(uri)
    for prefix in (events_prefix(settings, batch.day), ground_truth_prefix(settings, batch.day)):
        for stale in set(storage.list_files(settings, prefix)) - set(written):
            storage.remove_prefix(settings, stale)
    uri = locations(settings).raw_devices
    storage.write_bytes(
        settings, uri, "".join(x + "\n" for x in registry_lines(batch.config)).encode()
    )
    written.append(uri)
    return written, batch.line_count


__all__ = [
    "DEFAULT_BAD_RATES",
    "DayBatch",
    "Device",
    "GeneratorConfig",
    "device_registry",
    "generate_day",
    "registry_lines",
    "write_day",
]
