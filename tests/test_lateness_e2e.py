"""Late events end to end on embedded defaults: readings 2 and 6 days late, dropped into the raw
zone of an ingest day, are aggregated in gold, featurized and scored for their own dates; 8 days
late is past the lateness horizon (7) and quarantined as stale_timestamp. Every count
reconciles."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyiceberg.expressions import In
from pyspark.sql import functions as F

from lakehouse.generator import GeneratorConfig, generate_day
from lakehouse.settings import load_settings
from lakehouse.tables import locations
from ml import lake

pytestmark = pytest.mark.e2e

DAY = date(2026, 3, 10)
LATE_DAYS = (2, 6)
STALE_DAYS = 8
PER_DATE = 3


def late_events(cfg: GeneratorConfig, days_late: int) -> list[dict]:
    """New readings (fresh ids) of real devices, stamped days_late before DAY, at times of that
    date's own readings shifted by 30 s so they do not collide with them."""
    source = generate_day(cfg, DAY - timedelta(days=min(days_late, max(LATE_DAYS))))
    out = []
    for i, event in enumerate(source.valid_events[:PER_DATE]):
        stamp = event["event_ts"]
        shifted_date = (DAY - timedelta(days=days_late)).isoformat()
        seconds = int(stamp[17:19])
        out.append(
            {
                **event,
                "event_id": f"late-{days_late}d-{i}",
                "event_ts": f"{shifted_date}{stamp[10:17]}{(seconds + 30) % 60:02d}{stamp[19:]}",
            }
        )
    return out


def lakehouse_run(env: dict[str, str], day: date, stages: list[str]) -> dict:
    """`lakehouse run` for one day in its own process: its own JVM, so Spark's Iceberg catalog
    is this scenario's (the test session's Spark is bound to another home). Its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "run", "--start", day.isoformat(),
         "--stages", ",".join(stages)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((Path(env["LAKEHOUSE_HOME"]) / "summary.json").read_text())


@pytest.fixture(scope="module")
def late(tmp_path_factory, settings):
    home = tmp_path_factory.mktemp("lateness")
    env = {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_DEVICES": str(settings.devices),
        "LAKEHOUSE_SITES": str(settings.sites),
        "LAKEHOUSE_READING_SECONDS": str(settings.reading_seconds),
        "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
        "LAKEHOUSE_SPARK_DRIVER_MEMORY": "2g",
    }
    fs = load_settings(env)
    # The late events' own dates are processed first, so they hold full days of readings
    # (no forecast: it needs the day before each of these days).
    stages = ["bronze", "silver", "gold", "features", "train_anomaly", "score"]
    summaries = [
        lakehouse_run(env, DAY - timedelta(days=k), ["ingest", *stages])
        for k in sorted(LATE_DAYS, reverse=True)
    ]
    lakehouse_run(env, DAY, ["ingest"])
    cfg = GeneratorConfig.from_settings(fs)
    events = {k: late_events(cfg, k) for k in (*LATE_DAYS, STALE_DAYS)}
    folder = Path(locations(fs).raw_events) / f"ingest_date={DAY}" / "ingest_hour=04"
    lines = "".join(json.dumps(e) + "\n" for batch in events.values() for e in batch)
    (folder / "late-delivery.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    summaries.append(lakehouse_run(env, DAY, stages))
    return fs, events, summaries


def test_every_run_reconciles(late):
    _, _, summaries = late
    assert [s["reconciled"] for s in summaries] == [True] * len(summaries)


def test_late_events_land_in_silver_on_their_own_dates(late, spark):
    fs, events, _ = late
    silver = spark.read.format("delta").load(locations(fs).silver_events)
    rows = {r["event_id"]: r for r in silver.filter("event_id like 'late-%'").collect()}
    expected = {e["event_id"] for k in LATE_DAYS for e in events[k]}
    assert set(rows) == expected
    for event_id, row in rows.items():
        days_late = int(event_id.split("-")[1].removesuffix("d"))
        assert row["event_date"] == DAY - timedelta(days=days_late)
        assert row["ingest_date"] == DAY


def test_events_past_the_horizon_are_quarantined_as_stale(late, spark):
    fs, events, _ = late
    quarantine = spark.read.format("delta").load(locations(fs).silver_quarantine)
    rows = quarantine.filter("event_id like 'late-%'").collect()
    assert {r["event_id"] for r in rows} == {e["event_id"] for e in events[STALE_DAYS]}
    assert all(list(r["reasons"]) == ["stale_timestamp"] for r in rows)


def test_gold_aggregates_the_late_hours_with_their_events(late, spark):
    fs, events, _ = late
    loc = locations(fs)
    dates = [(DAY - timedelta(days=k)).isoformat() for k in LATE_DAYS]
    gold, _ = lake.read_iceberg(
        fs, loc.iceberg_warehouse, loc.gold_device_hourly, In("event_date", dates)
    )
    hour_of = gold["hour_start"].dt.strftime("%Y-%m-%dT%H")
    silver = spark.read.format("delta").load(loc.silver_events)
    for event in (e for k in LATE_DAYS for e in events[k]):
        hour = event["event_ts"][:13]
        (events_in_gold,) = gold.loc[
            (gold["device_id"] == event["device_id"]) & (hour_of == hour), "events"
        ]
        in_silver = silver.filter(
            (F.col("device_id") == event["device_id"])
            & (F.date_format("event_ts", "yyyy-MM-dd'T'HH") == hour)
        ).count()
        # The hour was recomputed with the late reading in it.
        assert events_in_gold == in_silver


def test_late_events_are_featurized_and_scored(late):
    fs, events, _ = late
    loc = locations(fs)
    dates = [DAY - timedelta(days=k) for k in LATE_DAYS]
    features, _ = lake.read_delta(fs, loc.features_events, partition="event_date", values=dates)
    scores, _ = lake.read_iceberg(
        fs,
        loc.iceberg_warehouse,
        loc.gold_anomaly_scores,
        In("event_date", [d.isoformat() for d in dates]),
    )
    expected = {e["event_id"] for k in LATE_DAYS for e in events[k]}
    assert expected <= set(features["event_id"])
    assert expected <= set(scores["event_id"])
