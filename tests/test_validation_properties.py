"""Properties of silver's validation over arbitrary raw lines (hypothesis), through the real
Spark transforms: bronze -> validate -> silver + quarantine.

For any batch of lines: each line lands in silver or in quarantine, never both and never
neither (a valid re-send of an event already taken is counted as a duplicate); silver never
holds a non-finite value, an invalid key, or an event time outside [ingest date - horizon,
ingest hour end + tolerance]; the counts reconcile. The batches mix lines built from the event
contract with mutations (blank and invisible keys, clock resets, non-finite and textual values,
missing fields) and plain text. Derandomized with a small budget in `make test`;
HYPOTHESIS_PROFILE=thorough explores more. Shrunk failures are pinned as @example cases.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis missing: the dev extra has it")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lakehouse.events import FUTURE_TOLERANCE_SECONDS  # noqa: E402
from spark_apps.bronze import RAW_SCHEMA, transform_bronze  # noqa: E402
from spark_apps.silver import (  # noqa: E402
    DEVICE_SCHEMA,
    transform_quarantine,
    transform_silver,
    transform_validate,
)

DAY = date(2026, 1, 5)
HOUR = 10
HORIZON = 7
RUN = "property-run"
AT = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
DEVICES = ("dev-0001", "dev-0002")

settings.register_profile(
    "make-test",
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "make-test"))

INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf"}

# --------------------------------------------------------------------------- strategies

invisible_chars = st.sampled_from(["\u200b", "\ufeff", "\u00a0", "\t", "\n", " ", "\x00", "\u2028"])
keys = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.builds(
        lambda a, b, c: a + b + c,
        st.sampled_from(["e1", "e2", "dev-0001"]),
        invisible_chars,
        st.just(""),
    ),
    st.sampled_from(["", " ", "   ", "e1", "e2", "e3"]),
)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1969, 12, 31), max_value=datetime(2026, 1, 12), timezones=st.just(UTC)
    ).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"),
    # Near the edges of the window.
    st.integers(-HORIZON * 86400 - 5, (HOUR + 1) * 3600 + FUTURE_TOLERANCE_SECONDS + 5).map(
        lambda s: (datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=s)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    ),
    st.sampled_from(["1970-01-01T00:00:00.000Z", "yesterday", ""]),
    st.integers(0, 2_000_000_000_000),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["21.5", "n/a", None, True]),
)
MISSING = object()


@st.composite
def event_lines(draw) -> str:
    fields = {
        "event_id": draw(keys),
        "device_id": draw(st.one_of(st.sampled_from(DEVICES), keys)),
        "sensor_type": "temperature",
        "event_ts": draw(timestamps),
        "value": draw(values),
        "unit": "degC",
        "battery_pct": draw(st.one_of(st.integers(0, 100), st.just("x"))),
    }
    for name in draw(st.sets(st.sampled_from(list(fields)), max_size=2)):
        fields[name] = MISSING
    # json.dumps writes NaN/Infinity as bare words (not JSON): a real producer bug.
    return json.dumps({k: v for k, v in fields.items() if v is not MISSING})


lines_strategy = st.lists(
    st.one_of(event_lines(), event_lines(), st.text(max_size=40)), min_size=1, max_size=12
)

# --------------------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def devices(spark):
    return spark.createDataFrame(
        [
            ("dev-0001", "site-00", "temperature", "degC", -40.0, 125.0),
            ("dev-0002", "site-00", "humidity", "pct_rh", 0.0, 100.0),
        ],
        DEVICE_SCHEMA,
    )


def route(spark, devices, lines: list[str]):
    """Validated, silver and quarantine rows of a batch; line i comes from source file i."""
    raw = spark.createDataFrame(
        [(DAY, HOUR, f"raw/{i:03d}", line) for i, line in enumerate(lines)],
        "ingest_date date, ingest_hour int, source_file string, raw_line string",
    )
    unreadable = spark.createDataFrame([], RAW_SCHEMA + ", file_problem STRING")
    bronze = transform_bronze(raw, unreadable, RUN, AT)
    validated = transform_validate(bronze, devices, max_lateness_days=HORIZON).cache()
    try:
        return (
            validated.collect(),
            transform_silver(validated).collect(),
            transform_quarantine(validated, RUN, AT).collect(),
        )
    finally:
        validated.unpersist()


def visible(key: str) -> bool:
    return key != "" and not any(c.isspace() or unicodedata.category(c) in INVISIBLE for c in key)


EARLIEST = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(days=HORIZON)
LATEST = datetime(2026, 1, 5, HOUR + 1, tzinfo=UTC) + timedelta(seconds=FUTURE_TOLERANCE_SECONDS)


def _line(**overrides) -> str:
    fields = {"event_id": "e1", "device_id": "dev-0001", "event_ts": "2026-01-05T10:00:00.000Z"}
    return json.dumps({**fields, "value": 1.0, **overrides})


@given(lines=lines_strategy)
@example(lines=[_line(event_id="")])  # a blank key
@example(lines=[_line(event_ts="1970-01-01T00:00:00.000Z")])  # a clock reset
@example(lines=[_line(value=float("nan"))])  # NaN, written as a bare word
@example(lines=[_line(event_id="e1\u200b"), _line()])  # ids that differ only invisibly
def test_every_line_lands_once_and_silver_holds_only_valid_events(spark, devices, lines):
    validated, silver, quarantine = route(spark, devices, lines)
    assert len(validated) == len(lines)

    in_silver = {r["source_file"] for r in silver}
    in_quarantine = {r["source_file"] for r in quarantine}
    accepted = {r["source_file"]: r["event_id"] for r in validated if not r["reasons"]}
    assert not in_silver & in_quarantine, "a line in both silver and quarantine"
    silver_ids = {r["event_id"] for r in silver}
    for i in range(len(lines)):
        source = f"raw/{i:03d}"
        if source in in_silver or source in in_quarantine:
            continue
        # Neither: only a valid re-send of an event silver took from another line.
        assert source in accepted, (lines[i], source)
        assert accepted[source] in silver_ids, (lines[i], source)

    duplicates = len(accepted) - len(silver)
    assert len(lines) == len(silver) + duplicates + len(quarantine)
    assert all(r["reasons"] for r in quarantine)

    for row in silver:
        assert math.isfinite(row["value"]), row
        assert visible(row["event_id"]), row
        assert visible(row["device_id"]), row
        ts = (
            row["event_ts"].replace(tzinfo=UTC)
            if row["event_ts"].tzinfo is None
            else row["event_ts"]
        )
        assert EARLIEST <= ts <= LATEST, row
