"""The whole pipeline on embedded defaults (real Spark, Delta, Iceberg on a SQLite JDBC catalog).

Expectations come from the generator's own record of what it delivered (valid events, injected
bad lines) and from plain Python over the raw files, never from the Spark code under test.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from table_readers import SPARK_STAGES

from lakehouse.events import REASON_CODES
from lakehouse.generator import GeneratorConfig, generate_day
from lakehouse.runner import run_pipeline
from lakehouse.tables import locations

pytestmark = pytest.mark.e2e

START = date(2026, 1, 5)
END = date(2026, 1, 7)
DAYS = [START, START + timedelta(days=1)]
LINEAGE = ("_run_id", "_ingested_at", "_quarantined_at")


@pytest.fixture(scope="module")
def batches(settings):
    config = GeneratorConfig.from_settings(settings)
    return {day: generate_day(config, day) for day in DAYS}


@pytest.fixture(scope="module")
def first_run(pipeline_run):
    return pipeline_run


def table_rows(spark, settings, drop=LINEAGE) -> dict[str, list[tuple]]:
    """Every table's full contents (minus per-run lineage columns), sorted."""
    loc = locations(settings)
    frames = {
        name: spark.read.format("delta").load(path)
        # Not the audit log (append-only: grows by design on reruns), nor the ML tables.
        for name, path in loc.tables(fmt="delta", writers=SPARK_STAGES).items()
    }
    gold = loc.tables(fmt="iceberg", writers=SPARK_STAGES)
    frames.update({name: spark.table(ident) for name, ident in gold.items()})
    out = {}
    for name, frame in frames.items():
        frame = frame.drop(*[c for c in drop if c in frame.columns])
        out[name] = sorted((tuple(r) for r in frame.collect()), key=repr)
    return out


def test_counts_reconcile_and_summary_is_written(settings, first_run):
    report, summary = first_run
    assert report.reconciled
    written = json.loads(settings.summary_path.read_text())
    assert written["reconciled"] is True
    assert written["totals"]["silver"] == summary["totals"]["silver"]
    assert set(written["tables"]) >= {"silver.iot_events", "gold.device_hourly"}


def test_bronze_holds_every_raw_line(settings, spark, first_run):
    raw_root = Path(locations(settings).raw_events)
    for day in DAYS:
        lines = 0
        for path in sorted(raw_root.glob(f"ingest_date={day}/ingest_hour=*/*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                lines += sum(1 for _ in fh)
        bronze = (
            spark.read.format("delta")
            .load(locations(settings).bronze_events)
            .filter(F.col("ingest_date") == F.lit(day))
            .count()
        )
        assert lines > 0
        assert bronze == lines


def test_every_reason_code_is_recorded_with_the_injected_counts(
    settings, spark, batches, first_run
):
    quarantine = spark.read.format("delta").load(locations(settings).silver_quarantine)
    found = Counter(
        {
            r["reason"]: r["n"]
            for r in quarantine.select(F.explode("reasons").alias("reason"))
            .groupBy("reason")
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
    )
    assert set(found) == set(REASON_CODES)
    injected = Counter()
    for batch in batches.values():
        injected.update({k: v for k, v in batch.injected.items() if k in REASON_CODES})
    assert found == injected


def test_silver_holds_exactly_the_delivered_valid_events(settings, spark, batches, first_run):
    expected = {e["event_id"] for b in batches.values() for e in b.valid_events}
    silver = spark.read.format("delta").load(locations(settings).silver_events)
    ids = [r["event_id"] for r in silver.select("event_id").collect()]
    assert len(ids) == len(set(ids)), "silver holds duplicate event_ids"
    assert set(ids) == expected


def test_silver_counts_each_day_against_the_generated_valid_events(batches, first_run):
    """Per day: the distinct valid events silver counted, the rows its MERGE read as source
    (Delta's own metric) and inserted + already present all equal what the generator delivered."""
    report, _ = first_run
    silver = {r.day: r.counts for r in report.results if r.stage == "silver"}
    for day in DAYS:
        delivered = len(batches[day].valid_events)
        counts = silver[day]
        assert counts["unique_events"] == delivered, day
        assert counts["merge_source_rows"] == delivered, day
        assert counts["inserted"] + counts["already_present"] == delivered, day
        assert counts["inserted"] > 0, day


def test_late_events_land_in_their_event_date(settings, spark, batches, first_run):
    # Events stamped before the day they were delivered, first delivered on that day (a re-send
    # of an event already delivered the day before is not new to silver).
    late, seen = {}, set()
    for day in DAYS:
        for e in batches[day].valid_events:
            if e["event_ts"][:10] < day.isoformat() and e["event_id"] not in seen:
                late[e["event_id"]] = e["event_ts"][:10]
        seen |= {e["event_id"] for e in batches[day].valid_events}
    assert late, "the generator delivered no late events"
    silver = spark.read.format("delta").load(locations(settings).silver_events)
    landed = {
        r["event_id"]: r["event_date"].isoformat()
        for r in silver.filter(F.col("event_date") < F.col("ingest_date")).collect()
    }
    assert landed == late


def expected_device_hourly(batches) -> dict[tuple[str, datetime], dict]:
    """Hourly metrics computed in plain Python from the generator's valid events."""
    events = {e["event_id"]: e for b in batches.values() for e in b.valid_events}
    groups: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    for e in events.values():
        ts = datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00")).replace(tzinfo=None)
        groups[(e["device_id"], ts.replace(minute=0, second=0, microsecond=0))].append(
            float(e["value"])
        )
    return {
        key: {
            "events": len(v),
            "min_value": min(v),
            "max_value": max(v),
            "mean_value": statistics.fmean(v),
            "stddev_value": statistics.stdev(v) if len(v) > 1 else None,
            "p95_value": float(np.percentile(v, 95)),
        }
        for key, v in groups.items()
    }


def test_gold_hourly_metrics_equal_an_independent_computation(settings, spark, batches, first_run):
    expected = expected_device_hourly(batches)
    rows = spark.table(locations(settings).gold_device_hourly).collect()
    actual = {(r["device_id"], r["hour_start"]): r.asDict() for r in rows}
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        for metric, value in want.items():
            if value is None:
                assert got[metric] is None, (key, metric)
            else:
                assert math.isclose(got[metric], value, rel_tol=1e-9, abs_tol=1e-9), (
                    key,
                    metric,
                    got[metric],
                    value,
                )


def test_gold_site_daily_counts_match_the_events(settings, spark, batches, first_run):
    events = {e["event_id"]: e for b in batches.values() for e in b.valid_events}
    registry = {
        d["device_id"]: d["site_id"]
        for d in map(json.loads, Path(locations(settings).raw_devices).read_text().splitlines())
    }
    expected = Counter(
        (registry[e["device_id"]], e["event_ts"][:10], e["sensor_type"]) for e in events.values()
    )
    rows = spark.table(locations(settings).gold_site_daily).collect()
    actual = {
        (r["site_id"], r["event_date"].isoformat(), r["sensor_type"]): r["events"] for r in rows
    }
    assert actual == dict(expected)


def test_rerun_is_idempotent(settings, spark, first_run):
    before = table_rows(spark, settings)
    report = run_pipeline(settings, START, END, spark=spark)
    after = table_rows(spark, settings)

    assert report.reconciled
    silver = [r for r in report.results if r.stage == "silver"]
    assert sum(r.counts["inserted"] for r in silver) == 0
    assert set(after) == set(before)
    for name in before:
        assert after[name] == before[name], f"{name} changed on rerun"
