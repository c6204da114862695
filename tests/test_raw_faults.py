"""Bad input at the object level: objects that are not gzip, truncated, empty, or hold invalid
UTF-8 and over-long lines. Each is rejected or quarantined with a reason, the interval's other
objects still load, and the counts still reconcile."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.generator import GeneratorConfig, generate_day
from lakehouse.runner import run_pipeline
from lakehouse.settings import load_settings
from lakehouse.tables import hour_uri, locations

pytestmark = pytest.mark.e2e

DAY = date(2026, 2, 2)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, settings, spark):
    """One ingested day, then damaged on disk, then run through bronze and silver."""
    home = tmp_path_factory.mktemp("faults")
    fs = load_settings(
        {
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_DEVICES": str(settings.devices),
            "LAKEHOUSE_SITES": str(settings.sites),
            "LAKEHOUSE_READING_SECONDS": str(settings.reading_seconds),
        }
    )
    run_pipeline(fs, DAY, DAY + timedelta(days=1), stages=["ingest"])
    batch = generate_day(GeneratorConfig.from_settings(fs), DAY)

    Path(hour_uri(fs, DAY, 3)).write_bytes(b"this object is not gzip at all\n")
    five = Path(hour_uri(fs, DAY, 5))
    five.write_bytes(five.read_bytes()[: five.stat().st_size // 2])  # a killed upload
    extra = Path(locations(fs).raw_events) / f"ingest_date={DAY}"
    (extra / "ingest_hour=06" / "empty.jsonl.gz").write_bytes(b"")
    known = batch.valid_events[0]
    odd_utf8 = json.dumps({**known, "event_id": "utf8-bad", "unit": "degC"}).encode()
    odd_utf8 = odd_utf8.replace(b'"degC"', b'"deg\xffC"')
    too_long = json.dumps({**known, "event_id": "too-long", "unit": "u" * (1024 * 1024 + 1)})
    (extra / "ingest_hour=07" / "foreign.jsonl.gz").write_bytes(
        gzip.compress(odd_utf8 + b"\n" + too_long.encode() + b"\n")
    )
    report = run_pipeline(
        fs, DAY, DAY + timedelta(days=1), stages=["bronze", "silver"], spark=spark
    )
    return fs, batch, report


def counts(report, stage):
    (result,) = [r for r in report.results if r.stage == stage]
    return result.counts


def test_counts_reconcile_and_name_what_was_lost(faulty):
    _, batch, report = faulty
    assert report.reconciled
    bronze = counts(report, "bronze")
    assert bronze["unreadable_objects"] == 2
    assert bronze["empty_objects"] == 1
    assert bronze["manifest_lines_unreadable"] == len(batch.files[3]) + len(batch.files[5])
    assert bronze["unlisted_lines"] == 2
    assert bronze["missing_objects"] == 0
    expected_lines = sum(len(v) for h, v in batch.files.items() if h not in (3, 5)) + 2
    assert bronze["raw_lines"] == expected_lines
    assert bronze["bronze_rows"] == expected_lines + 2  # one row per unreadable object


def test_each_problem_is_quarantined_with_its_reason(faulty, spark):
    fs, _, _ = faulty
    quarantine = spark.read.format("delta").load(locations(fs).silver_quarantine)
    reasons = Counter(
        r["reason"] for r in quarantine.select(F.explode("reasons").alias("reason")).collect()
    )
    assert reasons["unreadable_file"] == 2
    assert reasons["invalid_utf8"] == 1
    assert reasons["line_too_long"] == 1
    hours = sorted(
        r["ingest_hour"]
        for r in quarantine.filter(F.array_contains("reasons", "unreadable_file")).collect()
    )
    assert hours == [3, 5]


def test_other_objects_still_load(faulty, spark):
    fs, batch, _ = faulty
    valid = {e["event_id"] for e in batch.valid_events}
    delivered_elsewhere = {
        json.loads(line)["event_id"]
        for hour, lines in batch.files.items()
        if hour not in (3, 5)
        for line in lines
        if _event_id(line) in valid
    }
    silver = spark.read.format("delta").load(locations(fs).silver_events)
    ids = {r["event_id"] for r in silver.select("event_id").collect()}
    assert delivered_elsewhere
    assert delivered_elsewhere <= ids <= valid


def _event_id(line: str) -> str | None:
    try:
        return json.loads(line).get("event_id")
    except (json.JSONDecodeError, AttributeError):
        return None
