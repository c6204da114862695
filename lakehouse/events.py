"""The IoT event contract shared by the generator, the Spark stages and the ML code.

A raw event is one JSON object per line:

    {"event_id": "3f2a…", "device_id": "dev-0007", "sensor_type": "temperature",
     "event_ts": "2026-01-05T13:07:00.000Z", "value": 21.73, "unit": "degC", "battery_pct": 87}

``event_id``, ``device_id``, ``event_ts`` and ``value`` are required; ``event_ts`` is ISO 8601 UTC
with milliseconds and a ``Z`` suffix; ``value`` is a JSON number. The keys ``event_id`` and
``device_id`` are visible text: no whitespace, control or invisible (format) character anywhere,
so two ids never differ by what a reader cannot see, and a blank id is no id. ``event_ts`` lies
in [ingest date - the lateness horizon (LAKEHOUSE_MAX_LATENESS_DAYS), end of the ingest hour +
FUTURE_TOLERANCE_SECONDS].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

REQUIRED_FIELDS: tuple[str, ...] = ("event_id", "device_id", "event_ts", "value")
KEY_FIELDS: tuple[str, ...] = ("event_id", "device_id")
# A key holding any of these is invalid (Java and Python regex alike): whitespace, separators
# (no-break space...), control characters, format characters (zero-width space, BOM, ...).
INVALID_KEY_CHARACTERS = r"[\s\p{Z}\p{Cc}\p{Cf}]"
OPTIONAL_FIELDS: tuple[str, ...] = ("sensor_type", "unit", "battery_pct")
# Every field of an event, in the order the generator writes them (the example above).
EVENT_FIELDS: tuple[str, ...] = (
    "event_id", "device_id", "sensor_type", "event_ts", "value", "unit", "battery_pct",
)  # fmt: skip
if sorted(EVENT_FIELDS) != sorted(REQUIRED_FIELDS + OPTIONAL_FIELDS):
    raise ValueError("EVENT_FIELDS must list each required and optional field once")
EVENT_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # strftime; millisecond precision is written
SPARK_TS_PATTERN = "yyyy-MM-dd'T'HH:mm:ss.SSSX"

# Events may be stamped at most this far past the end of the hour they were ingested in.
FUTURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class SensorType:
    name: str
    unit: str
    min_valid: float  # physically possible range: outside it a reading is impossible
    max_valid: float
    baseline: float  # typical level
    daily_amplitude: float  # peak-to-mean of the daily cycle
    noise: float  # standard deviation of the measurement noise
    decimals: int


SENSOR_TYPES: dict[str, SensorType] = {
    s.name: s
    for s in (
        SensorType("temperature", "degC", -40.0, 125.0, 21.0, 3.0, 0.25, 2),
        SensorType("humidity", "pct_rh", 0.0, 100.0, 45.0, 8.0, 1.0, 1),
        SensorType("pressure", "hPa", 300.0, 1100.0, 1013.0, 1.5, 0.3, 2),
        SensorType("vibration", "mm_s", 0.0, 50.0, 2.5, 0.8, 0.12, 3),
        SensorType("co2", "ppm", 0.0, 10000.0, 600.0, 150.0, 12.0, 0),
    )
}


class BadInput(StrEnum):
    """Every class of bad input the generator injects. The first eight are rejected by silver
    with the reason code of the same name; the last two are valid events that must neither be
    duplicated nor lost."""

    MALFORMED_JSON = "malformed_json"
    MISSING_FIELD = "missing_required_field"
    WRONG_TYPE = "wrong_type"
    IMPOSSIBLE_VALUE = "impossible_value"
    UNKNOWN_DEVICE = "unknown_device"
    FUTURE_TIMESTAMP = "future_timestamp"
    # event_id or device_id blank, or holding whitespace or invisible characters.
    INVALID_KEY = "invalid_key"
    # event_ts before the ingest date minus the lateness horizon (a clock reset: 1970).
    STALE_TIMESTAMP = "stale_timestamp"
    DUPLICATE = "duplicate_resend"
    LATE = "late_event"


# Reason codes in the quarantine table, one per rejected bad-input class.
REASON_CODES: tuple[str, ...] = (
    BadInput.MALFORMED_JSON.value,
    BadInput.MISSING_FIELD.value,
    BadInput.WRONG_TYPE.value,
    BadInput.IMPOSSIBLE_VALUE.value,
    BadInput.UNKNOWN_DEVICE.value,
    BadInput.FUTURE_TIMESTAMP.value,
    BadInput.INVALID_KEY.value,
    BadInput.STALE_TIMESTAMP.value,
)


class RawProblem(StrEnum):
    """Problems below the event level: how the bytes arrived, not what they say."""

    UNREADABLE_FILE = "unreadable_file"  # an object that is not readable gzip text
    INVALID_UTF8 = "invalid_utf8"
    LINE_TOO_LONG = "line_too_long"


# Longer lines are rejected: no event is anywhere near this size.
MAX_LINE_BYTES = 1024 * 1024

# Every reason code the quarantine table can hold.
ALL_REASON_CODES: tuple[str, ...] = REASON_CODES + tuple(p.value for p in RawProblem)


class AnomalyKind(StrEnum):
    SPIKE = "spike"
    DRIFT = "drift"
    STUCK = "stuck"
