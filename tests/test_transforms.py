"""Unit tests of the pure Spark transforms, on small inline frames with hand-worked answers."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, date, datetime

import pytest
from pyspark.sql import functions as F

from lakehouse.context import StageInputError
from spark_apps.bronze import (
    BRONZE_COLUMNS,
    EMPTY_OBJECT,
    RAW_SCHEMA,
    UNREADABLE_GZIP,
    RawObject,
    count_lines,
    inspect_raw_object,
    read_raw_lines,
    transform_bronze,
)
from spark_apps.gold import (
    exact_percentile,
    transform_device_hourly,
    transform_site_daily,
    transform_touched_hours,
)
from spark_apps.silver import (
    DEVICE_SCHEMA,
    SILVER_COLUMNS,
    parse_registry,
    transform_quarantine,
    transform_silver,
    transform_validate,
)

DAY = date(2026, 1, 5)
RUN = "test-run"
AT = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)


def event(**overrides) -> str:
    fields = {
        "event_id": "e1",
        "device_id": "dev-0001",
        "sensor_type": "temperature",
        "event_ts": "2026-01-05T10:15:00.000Z",
        "value": 21.5,
        "unit": "degC",
        "battery_pct": 90,
    }
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.fixture(scope="module")
def devices(spark):
    return spark.createDataFrame(
        [
            ("dev-0001", "site-00", "temperature", "degC", -40.0, 125.0),
            ("dev-0002", "site-00", "humidity", "pct_rh", 0.0, 100.0),
            ("dev-0003", "site-01", "temperature", "degC", -40.0, 125.0),
        ],
        DEVICE_SCHEMA,
    )


def raw_frame(spark, lines, hour=10, source="raw/part-00000.jsonl.gz"):
    return spark.createDataFrame(
        [(DAY, hour, source, line) for line in lines],
        "ingest_date date, ingest_hour int, source_file string, raw_line string",
    )


def no_unreadable(spark):
    return spark.createDataFrame([], RAW_SCHEMA + ", file_problem STRING")


def bronze_of(spark, lines, hour=10):
    return transform_bronze(raw_frame(spark, lines, hour), no_unreadable(spark), RUN, AT)


def reasons_by_line(spark, devices, lines, hour=10):
    rows = transform_validate(bronze_of(spark, lines, hour), devices).collect()
    return {r["raw_line"]: sorted(r["reasons"]) for r in rows}


# --- bronze -------------------------------------------------------------------------------


def test_bronze_keeps_every_line_with_text_fields_and_lineage(spark):
    lines = [event(), "{not json", "[1, 2]", event(event_id="e2", value="n/a")]
    rows = {r["raw_line"]: r for r in bronze_of(spark, lines).collect()}

    assert len(rows) == 4
    assert tuple(bronze_of(spark, lines).columns) == BRONZE_COLUMNS
    good = rows[event()]
    assert (good["is_corrupt"], good["event_id"], good["value"], good["battery_pct"]) == (
        False,
        "e1",
        "21.5",
        "90",
    )
    assert (good["_run_id"], good["source_file"], good["ingest_hour"]) == (
        RUN,
        "raw/part-00000.jsonl.gz",
        10,
    )
    assert rows["{not json"]["is_corrupt"] is True
    assert rows["[1, 2]"]["is_corrupt"] is True  # valid JSON, but not an event object
    assert rows["{not json"]["event_id"] is None
    assert rows[event(event_id="e2", value="n/a")]["value"] == "n/a"


def test_invalid_utf8_is_repaired_and_flagged(spark):
    raw = spark.createDataFrame(
        [(DAY, 10, "f", bytearray(b'{"event_id":"e\xff1"}'))],
        "ingest_date date, ingest_hour int, source_file string, raw_line binary",
    ).withColumn("raw_line", F.col("raw_line").cast("string"))
    (row,) = transform_bronze(raw, no_unreadable(spark), RUN, AT).collect()
    assert row["invalid_utf8"] is True
    assert row["raw_line"] == '{"event_id":"e\ufffd1"}'


def test_unreadable_objects_become_one_corrupt_row_each(spark):
    unreadable = spark.createDataFrame(
        [(DAY, 7, "raw/ingest_hour=07/part-00000.jsonl.gz", None, UNREADABLE_GZIP)],
        RAW_SCHEMA + ", file_problem STRING",
    )
    rows = transform_bronze(raw_frame(spark, [event()]), unreadable, RUN, AT).collect()
    bad = [r for r in rows if r["file_problem"]]
    assert [(r["ingest_hour"], r["is_corrupt"], r["raw_line"]) for r in bad] == [(7, True, None)]
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("data", "problem", "lines"),
    [
        (b"", EMPTY_OBJECT, 0),
        (b"plain text, not gzip\n", UNREADABLE_GZIP, 0),
        (gzip.compress(b'{"a": 1}\n' * 50)[:-12], UNREADABLE_GZIP, 0),  # truncated stream
        (bytes(range(256)) * 4, UNREADABLE_GZIP, 0),
        (gzip.compress(b'{"a": 1}\n'), None, 1),
        (gzip.compress(b'{"a": 1}\n{"a": 2}'), None, 2),  # no newline after the last line
        (gzip.compress(b""), None, 0),  # a valid, empty gzip stream holds zero lines
    ],
)
def test_inspect_raw_object(data, problem, lines):
    assert inspect_raw_object("s3://b/o.jsonl.gz", data) == RawObject(
        "s3://b/o.jsonl.gz", problem, lines
    )


def test_count_lines_splits_where_universal_newlines_split():
    rng = random.Random(7)
    for _ in range(2000):
        text = bytes(rng.choice(b"a\r\n") for _ in range(rng.randrange(12)))
        assert count_lines(text) == len(text.splitlines()), text


def test_raw_lines_are_counted_as_spark_reads_them(spark, tmp_path):
    # Bronze counts an object's lines while checking it, then reconciles them with the rows
    # Spark's text reader made of it: both must split at the same places.
    text = b'{"a": 1}\r\n{"a": 2}\r{"a": 3}\n\n\x0b\x0c\x1c\x85 {"a": 4}\n\xff\xfe\r\n{"a": 5}'
    day_dir = tmp_path / "ingest_date=2026-01-05" / "ingest_hour=10"
    day_dir.mkdir(parents=True)
    path = day_dir / "part-00000.jsonl.gz"
    path.write_bytes(gzip.compress(text))
    obj = inspect_raw_object(str(path), path.read_bytes())

    read = read_raw_lines(spark, str(tmp_path), DAY, [obj]).count()
    assert obj.lines == read == 7


# --- silver: one test per bad-input class -------------------------------------------------


def test_valid_event_has_no_reasons(spark, devices):
    assert reasons_by_line(spark, devices, [event()]) == {event(): []}


def test_malformed_json_is_rejected(spark, devices):
    line = event()[:-7]
    assert reasons_by_line(spark, devices, [line]) == {line: ["malformed_json"]}


@pytest.mark.parametrize("missing", ["event_id", "device_id", "event_ts", "value"])
def test_missing_required_field_is_rejected(spark, devices, missing):
    line = event(**{missing: ...})
    assert reasons_by_line(spark, devices, [line]) == {line: ["missing_required_field"]}


@pytest.mark.parametrize(
    "override",
    [{"value": "n/a"}, {"value": "21.5"}, {"event_ts": 1767607200}, {"event_ts": "yesterday"}],
)
def test_wrong_type_is_rejected(spark, devices, override):
    line = event(**override)
    assert reasons_by_line(spark, devices, [line]) == {line: ["wrong_type"]}


@pytest.mark.parametrize(
    ("device", "value"), [("dev-0002", 180.0), ("dev-0002", -0.5), ("dev-0001", 400.0)]
)
def test_physically_impossible_value_is_rejected(spark, devices, device, value):
    line = event(device_id=device, value=value)
    assert reasons_by_line(spark, devices, [line]) == {line: ["impossible_value"]}


def test_range_bounds_are_inclusive(spark, devices):
    lines = [event(device_id="dev-0002", value=0.0), event(device_id="dev-0002", value=100.0)]
    assert reasons_by_line(spark, devices, lines) == {line: [] for line in lines}


def test_unknown_device_is_rejected(spark, devices):
    line = event(device_id="dev-9999")
    assert reasons_by_line(spark, devices, [line]) == {line: ["unknown_device"]}


def test_future_timestamp_is_rejected_beyond_the_tolerance(spark, devices):
    # Ingested in hour 10: anything after 11:05 is in the future; 11:04 is clock skew.
    future = event(event_ts="2026-01-05T11:05:00.001Z")
    skewed = event(event_ts="2026-01-05T11:04:59.000Z")
    assert reasons_by_line(spark, devices, [future, skewed]) == {
        future: ["future_timestamp"],
        skewed: [],
    }


@pytest.mark.parametrize(
    "key",
    [
        "",  # blank
        "   ",  # whitespace only
        "\t",
        "e1\u200b",  # differs from e1 only by a zero-width space
        "\ufeffe1",  # a byte-order mark in front
        "e\u00a01",  # a no-break space inside
        "e1\n",
        "e\u00001",  # a NUL
    ],
)
def test_event_id_blank_or_with_invisible_characters_is_an_invalid_key(spark, devices, key):
    line = event(event_id=key)
    assert reasons_by_line(spark, devices, [line]) == {line: ["invalid_key"]}


def test_a_blank_or_padded_device_id_is_an_invalid_key_not_an_unknown_device(spark, devices):
    blank, spaced = event(device_id=""), event(device_id="dev-0001 ")
    assert reasons_by_line(spark, devices, [blank, spaced]) == {
        blank: ["invalid_key"],
        spaced: ["invalid_key"],
    }


def test_visible_unicode_ids_are_valid_keys(spark, devices):
    line = event(event_id="événement-ü-1")
    assert reasons_by_line(spark, devices, [line]) == {line: []}


def test_an_event_older_than_the_lateness_horizon_is_stale(spark, devices):
    # Ingested on 2026-01-05 with the default horizon of 7 days: 2025-12-29 00:00 is the
    # earliest event time accepted.
    epoch = event(event_ts="1970-01-01T00:00:00.000Z")
    eight_days = event(event_ts="2025-12-28T23:59:59.999Z")
    seven_days = event(event_ts="2025-12-29T00:00:00.000Z")
    assert reasons_by_line(spark, devices, [epoch, eight_days, seven_days]) == {
        epoch: ["stale_timestamp"],
        eight_days: ["stale_timestamp"],
        seven_days: [],
    }


def test_the_lateness_horizon_is_a_parameter(spark, devices):
    two_days = event(event_ts="2026-01-03T10:00:00.000Z")
    bronze = bronze_of(spark, [two_days])
    for horizon, expected in ((1, ["stale_timestamp"]), (2, [])):
        (row,) = transform_validate(bronze, devices, max_lateness_days=horizon).collect()
        assert sorted(row["reasons"]) == expected


def test_invalid_utf8_line_is_rejected(spark, devices):
    line = event().encode().replace(b'"degC"', b'"deg\xffC"')  # a stray byte in a string
    raw = spark.createDataFrame(
        [(DAY, 10, "f", bytearray(line))],
        "ingest_date date, ingest_hour int, source_file string, raw_line binary",
    ).withColumn("raw_line", F.col("raw_line").cast("string"))
    rows = transform_validate(transform_bronze(raw, no_unreadable(spark), RUN, AT), devices)
    assert [sorted(r["reasons"]) for r in rows.collect()] == [["invalid_utf8"]]


def test_line_longer_than_a_mebibyte_is_rejected(spark, devices):
    line = event(unit="x" * (1024 * 1024))
    assert reasons_by_line(spark, devices, [line]) == {line: ["line_too_long"]}


def test_unreadable_object_is_quarantined_with_its_reason(spark, devices):
    unreadable = spark.createDataFrame(
        [(DAY, 3, "raw/ingest_hour=03/part-00000.jsonl.gz", None, UNREADABLE_GZIP)],
        RAW_SCHEMA + ", file_problem STRING",
    )
    bronze = transform_bronze(raw_frame(spark, []), unreadable, RUN, AT)
    rows = transform_quarantine(transform_validate(bronze, devices), RUN, AT).collect()
    assert [(r["source_file"], list(r["reasons"])) for r in rows] == [
        ("raw/ingest_hour=03/part-00000.jsonl.gz", ["unreadable_file"])
    ]


def test_several_reasons_are_all_recorded(spark, devices):
    line = event(device_id="dev-9999", event_ts="2026-01-09T00:00:00.000Z", value="high")
    assert reasons_by_line(spark, devices, [line]) == {
        line: ["future_timestamp", "unknown_device", "wrong_type"]
    }


def test_silver_deduplicates_by_event_id_and_types_fields(spark, devices):
    original = event(event_id="a", value=20.25)
    resend = original
    other = event(event_id="b", event_ts="2026-01-04T23:59:00.000Z", value=19.0)  # late event
    validated = transform_validate(bronze_of(spark, [original, resend, other]), devices)
    rows = sorted(transform_silver(validated).collect(), key=lambda r: r["event_id"])

    assert tuple(transform_silver(validated).columns) == SILVER_COLUMNS
    assert [(r["event_id"], r["value"], r["event_date"], r["site_id"]) for r in rows] == [
        ("a", 20.25, date(2026, 1, 5), "site-00"),
        ("b", 19.0, date(2026, 1, 4), "site-00"),  # lands in its event date
    ]
    assert rows[0]["event_ts"] == datetime(2026, 1, 5, 10, 15)
    assert rows[0]["battery_pct"] == 90


def test_quarantine_holds_each_rejected_line_once_with_reasons(spark, devices):
    bad = [event(device_id="dev-9999"), "garbage"]
    validated = transform_validate(bronze_of(spark, [event(), *bad]), devices)
    rows = transform_quarantine(validated, RUN, AT).collect()
    assert sorted((r["raw_line"], tuple(r["reasons"])) for r in rows) == sorted(
        [(bad[0], ("unknown_device",)), ("garbage", ("malformed_json",))]
    )


# --- gold ---------------------------------------------------------------------------------


def silver_frame(spark, rows):
    return spark.createDataFrame(
        [
            (eid, dev, site, "temperature", "degC", datetime.fromisoformat(ts), val, ingest)
            for eid, dev, site, ts, val, ingest in rows
        ],
        "event_id string, device_id string, site_id string, sensor_type string, unit string, "
        "event_ts timestamp, value double, ingest_date date",
    ).withColumn("event_date", F.to_date("event_ts"))


def test_gold_recomputes_only_touched_hours_from_all_their_rows(spark):
    old, new = date(2026, 1, 4), date(2026, 1, 5)
    silver = silver_frame(
        spark,
        [
            ("1", "d1", "s1", "2026-01-05 10:00:00", 1.0, old),
            ("2", "d1", "s1", "2026-01-05 10:20:00", 2.0, old),
            ("3", "d1", "s1", "2026-01-05 10:40:00", 6.0, new),  # late arrival into hour 10
            ("4", "d1", "s1", "2026-01-05 11:00:00", 9.0, old),  # untouched hour
            ("5", "d2", "s1", "2026-01-05 10:05:00", 4.0, new),
        ],
    )
    touched = transform_touched_hours(silver.filter(F.col("ingest_date") == F.lit(new)))
    rows = {r["device_id"]: r for r in transform_device_hourly(silver, touched).collect()}
    assert sorted(rows) == ["d1", "d2"]
    d1 = rows["d1"]
    assert (d1["hour_start"], d1["events"], d1["min_value"], d1["max_value"]) == (
        datetime(2026, 1, 5, 10),
        3,
        1.0,
        6.0,
    )
    assert d1["mean_value"] == pytest.approx(3.0)
    assert d1["stddev_value"] == pytest.approx(2.6457513, rel=1e-6)  # sample stddev of 1,2,6
    assert d1["p95_value"] == pytest.approx(5.6)  # linear interpolation: 2 + 0.9 * (6 - 2)
    assert rows["d2"]["events"] == 1
    assert rows["d2"]["stddev_value"] is None


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([10.0, 1.0, 4.0, 2.0, 3.0], 0.95, 8.8),  # rank 3.8 of 1,2,3,4,10: 4 + 0.8 * (10 - 4)
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 1.0, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 0.0, 1.0),
        ([7.25], 0.95, 7.25),
        ([-2.0, -2.0, 5.0], 0.25, -2.0),  # both neighbours equal
    ],
)
def test_exact_percentile_interpolates_between_the_closest_ranks(spark, values, fraction, expected):
    frame = spark.createDataFrame([(1, v) for v in values], "k int, value double")
    (row,) = (
        frame.groupBy("k")
        .agg(
            exact_percentile(F.col("value"), fraction).alias("ours"),
            F.percentile(F.col("value"), F.lit(fraction)).alias("spark"),
        )
        .collect()
    )
    assert row["ours"] == pytest.approx(expected, abs=1e-12)
    assert row["ours"] == row["spark"]


def test_site_daily_summarises_touched_sites(spark):
    silver = silver_frame(
        spark,
        [
            ("1", "d1", "s1", "2026-01-05 10:00:00", 1.0, date(2026, 1, 5)),
            ("2", "d2", "s1", "2026-01-05 12:00:00", 3.0, date(2026, 1, 5)),
            ("3", "d3", "s2", "2026-01-05 12:00:00", 8.0, date(2026, 1, 5)),
        ],
    )
    touched = spark.createDataFrame([("s1", date(2026, 1, 5))], "site_id string, event_date date")
    rows = transform_site_daily(silver, touched).collect()
    assert [
        (r["site_id"], r["devices"], r["events"], r["min_value"], r["max_value"], r["mean_value"])
        for r in rows
    ] == [("s1", 2, 2, 1.0, 3.0, 2.0)]


def test_device_registry_is_parsed_strictly():
    good = '{"device_id": "d1", "site_id": "s", "sensor_type": "co2", "unit": "ppm", '
    rows = parse_registry(good + '"min_valid": 0, "max_valid": 10000}\n', "reg")
    assert rows == [("d1", "s", "co2", "ppm", 0.0, 10000.0)]
    with pytest.raises(StageInputError, match="reg line 2"):
        parse_registry(good + '"min_valid": 0, "max_valid": 1}\n{"device_id": "d2"}\n', "reg")
    with pytest.raises(StageInputError, match="empty"):
        parse_registry("\n", "reg")
