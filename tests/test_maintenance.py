"""Weekly table maintenance (spark_apps/maintenance.py) on real Delta and Iceberg tables.

The tables are the test's own, under their own LAKEHOUSE_HOME and Iceberg catalog registered in
the shared session, so compacting, vacuuming and expiring never touch what other tests read.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakehouse.locks import LockTimeoutError, writer_lock
from lakehouse.pipeline import STAGES
from lakehouse.settings import Settings, load_settings
from lakehouse.tables import TABLES, locations
from spark_apps import maintenance

CATALOG = "maint"
DAY = 24 * 3600


def test_retention_is_counted_from_the_interval_end() -> None:
    now = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    # An old interval keeps everything newer than its end minus the retention...
    assert maintenance.vacuum_hours(date(2026, 2, 1), 7, now) == (28 + 7) * 24 + 7
    assert maintenance.orphan_cutoff(date(2026, 2, 1), 7, now) == datetime(2026, 1, 25, tzinfo=UTC)
    # ... and never less than each engine's safety margin from now.
    assert maintenance.vacuum_hours(date(2026, 3, 1), 1, now) == 168
    assert maintenance.orphan_cutoff(date(2026, 3, 5), 1, now) == datetime(
        2026, 2, 28, 6, 30, tzinfo=UTC
    )


@pytest.fixture
def own(tmp_path: Path, spark: Any) -> Settings:
    """Settings of an empty lakehouse whose Iceberg catalog is registered in the session."""
    from spark_apps.session import spark_conf

    home = tmp_path / "home"
    home.mkdir()  # the SQLite catalog file is created there
    settings = load_settings({"LAKEHOUSE_HOME": str(home), "LAKEHOUSE_CATALOG_NAME": CATALOG})
    catalog_keys = {
        k: v
        for k, v in spark_conf(settings, cluster=True).items()
        if k.startswith(f"spark.sql.catalog.{CATALOG}")
    }
    for key, value in catalog_keys.items():
        spark.conf.set(key, value)
    yield settings
    for key in catalog_keys:
        spark.conf.unset(key)


def age(path: Path, days: int) -> Path:
    """Backdate a file's modification time, as if it had been written ``days`` ago."""
    stamp = datetime.now(UTC).timestamp() - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def rows(spark: Any, sql: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.sql(sql).collect())


def by_action(out: list[dict], table: str) -> dict[str, dict]:
    return {line["action"]: line for line in out if line["table"] == table}


def test_delta_optimize_and_vacuum(spark: Any, own: Settings) -> None:
    path = locations(own).silver_events
    # One commit of six small files (one per partition).
    df = spark.range(0, 60, numPartitions=6).selectExpr("id", "id * 2 AS value")
    df.write.format("delta").save(path)
    table = Path(path)
    before = rows(spark, f"SELECT * FROM delta.`{path}`")
    assert len(before) == 60
    old_orphan = table / "part-99999-orphan-old.snappy.parquet"
    old_orphan.write_bytes(b"left over by a killed writer")
    age(old_orphan, 30)
    new_orphan = table / "part-99998-orphan-new.snappy.parquet"
    new_orphan.write_bytes(b"a write still in flight")
    detail = f"DESCRIBE DETAIL delta.`{path}`"
    assert spark.sql(detail).first()["numFiles"] == 6

    out = maintenance.maintain_delta(spark, own, date.today(), 7)

    assert spark.sql(detail).first()["numFiles"] == 1
    assert rows(spark, f"SELECT * FROM delta.`{path}`") == before
    done = by_action(out, "silver.iot_events")
    assert done["optimize"]["numFilesRemoved"] == 6
    assert done["optimize"]["numFilesAdded"] == 1
    # Seven days back from the interval end (today, midnight) is just over 168 hours from now.
    assert 7 * 24 <= done["vacuum"]["retain_hours"] <= 8 * 24
    # Unreferenced and older than the retention: gone; recent: kept (it may be a live write).
    assert not old_orphan.exists()
    assert new_orphan.exists()
    # The files OPTIMIZE replaced are within retention: time travel still reads them.
    assert rows(spark, f"SELECT * FROM delta.`{path}` VERSION AS OF 0") == before
    skipped = {line["table"] for line in out if line["action"] == "skip"}
    assert skipped == set(maintenance.delta_paths(own)) - {"silver.iot_events"}
    assert all(
        line["reason"] == "not a Delta table yet" for line in out if line["action"] == "skip"
    )


def test_iceberg_rewrite_expire_and_orphans(spark: Any, own: Settings) -> None:
    name = locations(own).gold_device_hourly
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.gold")
    spark.sql(
        f"CREATE TABLE {name} (device_id STRING, hour_start TIMESTAMP, mean DOUBLE) USING iceberg"
    )
    for hour in range(6):  # six commits, one small data file each
        spark.sql(
            f"INSERT INTO {name} VALUES "
            f"('dev-{hour}', TIMESTAMP '2026-01-05 {hour:02d}:00:00', {hour}.5)"
        )
    before = rows(spark, f"SELECT * FROM {name}")
    snapshots = [
        r.snapshot_id
        for r in spark.sql(
            f"SELECT snapshot_id FROM {name}.snapshots ORDER BY committed_at"
        ).collect()
    ]
    assert len(snapshots) == 6
    assert spark.sql(f"SELECT count(*) FROM {name}.files").first()[0] == 6
    data = Path(locations(own).iceberg_warehouse) / "gold" / "device_hourly" / "data"
    assert data.is_dir()
    old_orphan = data / "00000-0-orphan-old.parquet"
    old_orphan.write_bytes(b"left over by a killed writer")
    age(old_orphan, 30)
    new_orphan = data / "00000-0-orphan-new.parquet"
    new_orphan.write_bytes(b"a write still in flight")

    # A week after the data: every snapshot but the newest five is past the cutoff.
    out = maintenance.maintain_iceberg(spark, own, date.today() + timedelta(days=2), 1)

    assert rows(spark, f"SELECT * FROM {name}") == before
    assert spark.sql(f"SELECT count(*) FROM {name}.files").first()[0] == 1
    kept = [r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {name}.snapshots").collect()]
    # Six inserts + one rewrite = seven; the oldest two expired.
    assert len(kept) == maintenance.ICEBERG_RETAIN_LAST == 5
    assert set(snapshots[:2]).isdisjoint(kept)
    assert set(snapshots[2:]) < set(kept)
    done = by_action(out, name)
    assert done["rewrite_data_files"]["rewritten_data_files_count"] == 6
    assert done["rewrite_data_files"]["added_data_files_count"] == 1
    assert done["expire_snapshots"]["deleted_manifest_lists_count"] == 2
    assert done["remove_orphan_files"]["orphan_files"] == 1
    assert not old_orphan.exists()
    assert new_orphan.exists()
    skipped = {line["table"]: line["reason"] for line in out if line["action"] == "skip"}
    assert skipped == {t: "no such table yet" for t in maintenance.iceberg_tables(own) if t != name}
    spark.sql(f"DROP TABLE {name} PURGE")


def test_every_registered_table_is_maintained_under_its_writers_lock(own: Settings) -> None:
    catalog = f"{CATALOG}."
    maintained = {*maintenance.delta_paths(own), *(t.removeprefix(catalog)
                  for t in maintenance.iceberg_tables(own))}  # fmt: skip
    # Written out, per writer and format: a table added to a stage but not to the registry
    # (or registered under the wrong writer, whose lock maintenance would then take) fails here.
    by_writer: dict[tuple[str, str], set[str]] = {}
    for t in TABLES:
        by_writer.setdefault((t.writer, t.format), set()).add(t.name)
    assert by_writer == {
        ("bronze", "delta"): {"bronze.iot_events"},
        ("silver", "delta"): {"silver.iot_events", "silver.quarantine", "silver.devices"},
        ("gold", "iceberg"): {"gold.device_hourly", "gold.site_daily"},
        ("audit", "delta"): {"audit.stage_runs"},
        ("features", "delta"): {"features.events", "features.device_hourly"},
        ("score", "iceberg"): {"gold.anomaly_scores", "gold.device_hourly_forecast"},
    }
    assert maintained == {name for names in by_writer.values() for name in names}
    stages = {s.name for s in STAGES}
    assert all(t.writer in stages | {"audit"} for t in TABLES)


def test_maintenance_waits_for_the_tables_writer(spark: Any, own: Settings) -> None:
    """OPTIMIZE/VACUUM commit to the table: never while its stage (here silver) writes it."""
    path = locations(own).silver_events
    spark.range(0, 10, numPartitions=2).write.format("delta").save(path)
    impatient = replace(own, lock_timeout_seconds=1)
    with writer_lock(own, "silver"), pytest.raises(LockTimeoutError, match="silver"):
        maintenance.maintain_delta(spark, impatient, date.today(), 7)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count() == 1, "committed while locked"
