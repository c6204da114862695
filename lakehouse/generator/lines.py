"""Event lines: the clean JSON line of each reading, its parsed form, and the bad lines made
from it. The fields and their order are ``lakehouse.events.EVENT_FIELDS``; every form below is
derived from that one tuple and from where each field's value comes from.

Lines are spelled exactly as ``json.dumps`` would (", " and ": " separators), with ``value``
printed to the sensor's decimals. The clean line is the hot path (one per event, a million a
day at bench scale), so its text around the per-reading values is rendered once per device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from lakehouse.events import EVENT_FIELDS, BadInput, SensorType
from lakehouse.generator.config import DAY_MS, HOUR_MS, UNIX_EPOCH, GeneratorConfig
from lakehouse.generator.fleet import Device
from lakehouse.generator.readings import CleanDay

# Fields that are the same for every reading of a device (their parsed value)...
DEVICE_FIELDS: dict[str, Callable[[Device], str]] = {
    "device_id": lambda d: d.device_id,
    "sensor_type": lambda d: d.sensor.name,
    "unit": lambda d: d.sensor.unit,
}
# ...and those that vary per reading, in line order. The hot loop in ``render`` fills them in
# this order: the check below fails at import if EVENT_FIELDS ever orders them otherwise.
READING_FIELDS: tuple[str, ...] = ("event_id", "event_ts", "value", "battery_pct")
if (
    set(DEVICE_FIELDS) | set(READING_FIELDS) != set(EVENT_FIELDS)
    or tuple(f for f in EVENT_FIELDS if f in READING_FIELDS) != READING_FIELDS
):
    raise ValueError("lines: DEVICE_FIELDS + READING_FIELDS must be EVENT_FIELDS, in its order")
_STRING_READING_FIELDS = frozenset({"event_id", "event_ts"})
_SLOT = "\x00"


def format_ts(day: date, ts_ms: np.ndarray) -> list[str]:
    stamps = np.datetime64(day.isoformat(), "ms") + ts_ms.astype("timedelta64[ms]")
    return [s + "Z" for s in np.datetime_as_string(stamps, unit="ms").tolist()]


def dumps(fields: list[tuple[str, str]]) -> str:
    """A JSON object from (key, already-encoded JSON value) pairs, json.dumps' spacing."""
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields) + "}"


def _encoded(device: Device, reading: dict[str, str]) -> list[tuple[str, str]]:
    """(field, JSON text) in line order; ``reading`` maps READING_FIELDS to their JSON text."""
    return [
        (k, reading[k] if k in reading else json.dumps(DEVICE_FIELDS[k](device)))
        for k in EVENT_FIELDS
    ]


def _line_pieces(device: Device) -> tuple[str, ...]:
    """The device's clean line cut around its per-reading values (len(READING_FIELDS) + 1)."""
    slots = {k: f'"{_SLOT}"' if k in _STRING_READING_FIELDS else _SLOT for k in READING_FIELDS}
    return tuple(dumps(_encoded(device, slots)).split(_SLOT))


@dataclass(frozen=True)
class Rendered:
    """Text of some readings of one day, as parallel lists (position j <-> reading idx[j])."""

    dev: list[int]
    event_id: list[str]
    event_ts: list[str]
    value: list[str]  # JSON number text
    battery: list[int]
    line: list[str]

    def fields(self, fleet: list[Device], j: int) -> list[tuple[str, str]]:
        """(field, JSON text) of reading j, in line order: what bad lines are made from."""
        reading = {
            "event_id": json.dumps(self.event_id[j]),
            "event_ts": json.dumps(self.event_ts[j]),
            "value": self.value[j],
            "battery_pct": str(self.battery[j]),
        }
        return _encoded(fleet[self.dev[j]], reading)

    def events(self, fleet: list[Device], positions: list[int]) -> list[dict]:
        """The parsed form of the clean lines at ``positions`` (equal to what json.loads
        returns for them)."""
        constants = [{k: get(d) for k, get in DEVICE_FIELDS.items()} for d in fleet]
        number = [float if d.sensor.decimals else int for d in fleet]
        ids, stamps, texts, devs, batteries = (
            self.event_id, self.event_ts, self.value, self.dev, self.battery,
        )  # fmt: skip
        return [
            {
                "event_id": ids[j],
                "event_ts": stamps[j],
                "value": number[devs[j]](texts[j]),
                "battery_pct": batteries[j],
                **constants[devs[j]],
            }
            for j in positions
        ]


def render(cfg: GeneratorConfig, fleet: list[Device], day: CleanDay, idx: np.ndarray) -> Rendered:
    """The clean JSON line of each reading in ``idx``.

    ``event_id`` is the 16-byte BLAKE2b hex digest of ``"{seed}|{device_id}|{event_ts}"``.
    """
    ts_list = format_ts(day.day, day.ts_ms[idx])
    devs = day.dev[idx].tolist()
    values = day.value[idx].tolist()
    batteries = day.battery[idx].tolist()
    per_device = [
        (f"{cfg.seed}|{d.device_id}|", f".{d.sensor.decimals}f", *_line_pieces(d)) for d in fleet
    ]
    blake = hashlib.blake2b
    ids, texts, lines = [], [], []
    for d, ts, v, b in zip(devs, ts_list, values, batteries, strict=True):
        key, spec, p0, p1, p2, p3, p4 = per_device[d]
        eid = blake((key + ts).encode(), digest_size=16).hexdigest()
        text = format(v, spec)
        ids.append(eid)
        texts.append(text)
        lines.append(f"{p0}{eid}{p1}{ts}{p2}{text}{p3}{b}{p4}")  # READING_FIELDS' order
    return Rendered(devs, ids, ts_list, texts, batteries, lines)


def mutate(
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
        line = dumps(fields)
        if rng.random() < 0.5:  # truncated: a killed writer or a cut connection
            return line[: int(rng.integers(1, len(line)))]
        return line.replace('", "', '" "', 1)  # garbled: a separator lost in transit
    if kind is BadInput.MISSING_FIELD:
        missing = str(rng.choice(["event_id", "device_id", "event_ts", "value"]))
        return dumps([(k, v) for k, v in fields if k != missing])
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
    return dumps(list(values.items()))
