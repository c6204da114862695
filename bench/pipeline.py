"""Benchmark: events per second through bronze -> silver -> gold on embedded Spark, with the same
logic in DuckDB in the same process as a reference.

    .venv/bin/python bench/pipeline.py --events 1000000 --days 2

``--days`` consecutive days are generated, each with enough devices to reach ``--events``
readings, and run one day at a time in one SparkSession, as the runner does. The first day pays
for the JVM's warm-up (JIT compilation, class loading); later days show the steady state, and
the ratio to DuckDB is taken on the last day. Spark session start-up and generation are reported
apart from the stage times. DuckDB reads the same raw files and writes plain Parquet (no table
format, no MERGE, no transactions): it is the single-node floor for the computation, not a
like-for-like lakehouse. Both engines' silver and quarantine counts are printed so a difference
in logic shows up next to the times.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lakehouse.context import StageContext
from lakehouse.events import FUTURE_TOLERANCE_SECONDS, INVALID_KEY_CHARACTERS
from lakehouse.settings import load_settings
from lakehouse.tables import locations, raw_day_uri

START = date(2026, 1, 5)
console = Console()


def duckdb_pipeline(
    raw_glob: str, devices_path: str, out: Path, day: date, max_lateness_days: int
) -> dict[str, float | int]:
    """Bronze -> silver -> gold in DuckDB SQL, mirroring spark_apps' transforms."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET TimeZone = 'UTC'")
    times: dict[str, float | int] = {}

    started = time.monotonic()
    con.execute(
        f"""
        CREATE TABLE bronze AS
        SELECT filename AS source_file,
               CAST(regexp_extract(filename, 'ingest_hour=(\\d+)', 1) AS INTEGER) AS ingest_hour,
               raw_line,
               NOT (coalesce(json_valid(raw_line), false) AND ltrim(raw_line) LIKE '{{%')
                   AS is_corrupt
        FROM read_csv('{raw_glob}', columns = {{'raw_line': 'VARCHAR'}}, header = false,
                      delim = '\\x01', quote = '', escape = '', filename = true,
                      compression = 'gzip', strict_mode = false)
        """
    )
    con.execute(f"COPY bronze TO '{out}/bronze.parquet' (FORMAT parquet)")
    times["bronze_s"] = time.monotonic() - started

    started = time.monotonic()
    con.execute(
        f"""
        CREATE TABLE devices AS
        SELECT * FROM read_json('{devices_path}', format = 'newline_delimited')
        """
    )
    con.execute(
        f"""
        CREATE TABLE validated AS
        WITH parsed AS (
            SELECT b.*,
                CASE WHEN NOT is_corrupt THEN raw_line ->> '$.event_id' END AS event_id,
                CASE WHEN NOT is_corrupt THEN raw_line ->> '$.device_id' END AS device_id,
                CASE WHEN NOT is_corrupt THEN raw_line ->> '$.event_ts' END AS event_ts_raw,
                CASE WHEN NOT is_corrupt THEN json_type(raw_line, '$.value') END AS value_type,
                CASE WHEN NOT is_corrupt THEN raw_line ->> '$.value' END AS value_raw
            FROM bronze b
        ), typed AS (
            SELECT p.*, d.site_id, d.sensor_type, d.unit, d.min_valid, d.max_valid,
                CASE WHEN value_type IN ('DOUBLE', 'BIGINT', 'UBIGINT')
                     THEN TRY_CAST(value_raw AS DOUBLE) END AS value,
                try_strptime(event_ts_raw, '%Y-%m-%dT%H:%M:%S.%gZ') AS event_ts
            FROM parsed p LEFT JOIN devices d USING (device_id)
        )
        SELECT *, list_filter([
            CASE WHEN is_corrupt THEN 'malformed_json' END,
            CASE WHEN NOT is_corrupt AND (event_id IS NULL OR device_id IS NULL
                 OR event_ts_raw IS NULL OR value_raw IS NULL) THEN 'missing_required_field' END,
            CASE WHEN NOT is_corrupt AND ((value_raw IS NOT NULL AND value IS NULL)
                 OR (event_ts_raw IS NOT NULL AND event_ts IS NULL)) THEN 'wrong_type' END,
            CASE WHEN NOT is_corrupt AND site_id IS NOT NULL AND value IS NOT NULL
                 AND (isnan(value) OR value < min_valid OR value > max_valid)
                 THEN 'impossible_value' END,
            CASE WHEN NOT is_corrupt AND device_id IS NOT NULL AND site_id IS NULL
                 AND NOT (device_id = '' OR regexp_matches(device_id, '{INVALID_KEY_CHARACTERS}'))
                 THEN 'unknown_device' END,
            CASE WHEN event_ts > TIMESTAMP '{day}' + to_hours(ingest_hour + 1)
                 + to_seconds({FUTURE_TOLERANCE_SECONDS}) THEN 'future_timestamp' END,
            CASE WHEN NOT is_corrupt AND (event_id = '' OR device_id = ''
                 OR regexp_matches(event_id, '{INVALID_KEY_CHARACTERS}')
                 OR regexp_matches(device_id, '{INVALID_KEY_CHARACTERS}')) THEN 'invalid_key' END,
            CASE WHEN event_ts < TIMESTAMP '{day}' - to_days({max_lateness_days})
                 THEN 'stale_timestamp' END
        ], lambda x: x IS NOT NULL) AS reasons
        FROM typed
        """
    )
    con.execute(
        """
        CREATE TABLE silver AS
        SELECT event_id, device_id, site_id, sensor_type, unit, event_ts,
               CAST(event_ts AS DATE) AS event_date, value
        FROM validated WHERE len(reasons) = 0
        QUALIFY row_number() OVER (PARTITION BY event_id
                                   ORDER BY ingest_hour, source_file, raw_line) = 1
        """
    )
    con.execute(f"COPY silver TO '{out}/silver.parquet' (FORMAT parquet)")
    con.execute(
        f"COPY (SELECT * FROM validated WHERE len(reasons) > 0) TO '{out}/quarantine.parquet'"
        " (FORMAT parquet)"
    )
    times["silver_s"] = time.monotonic() - started
    times["silver_rows"] = con.execute("SELECT count(*) FROM silver").fetchone()[0]
    times["quarantined"] = con.execute(
        "SELECT count(*) FROM validated WHERE len(reasons) > 0"
    ).fetchone()[0]

    started = time.monotonic()
    con.execute(
        f"""
        COPY (
            SELECT device_id, site_id, sensor_type, unit,
                   date_trunc('hour', event_ts) AS hour_start,
                   count(*) AS events, min(value) AS min_value, max(value) AS max_value,
                   avg(value) AS mean_value, stddev_samp(value) AS stddev_value,
                   quantile_cont(value, 0.95) AS p95_value
            FROM silver GROUP BY ALL
        ) TO '{out}/device_hourly.parquet' (FORMAT parquet)
        """
    )
    con.execute(
        f"""
        COPY (
            SELECT site_id, event_date, sensor_type, count(DISTINCT device_id) AS devices,
                   count(*) AS events, min(value) AS min_value, max(value) AS max_value,
                   avg(value) AS mean_value
            FROM silver GROUP BY ALL
        ) TO '{out}/site_daily.parquet' (FORMAT parquet)
        """
    )
    times["gold_s"] = time.monotonic() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="readings per day")
    parser.add_argument(
        "--days", type=int, default=2, help="consecutive days (the first warms the JVM up)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's LAKEHOUSE_HOME")
    args = parser.parse_args()
    if args.events < 1 or args.days < 1:
        parser.error("--events and --days must be at least 1")

    reading_seconds = 60
    devices = max(1, math.ceil(args.events / (86_400 // reading_seconds)))
    days = [START + timedelta(days=i) for i in range(args.days)]
    home = Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
    settings = load_settings(
        {
            **os.environ,
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_DEVICES": str(devices),
            "LAKEHOUSE_SITES": str(max(1, devices // 50)),
            "LAKEHOUSE_READING_SECONDS": str(reading_seconds),
        }
    )
    console.print(
        f"Benchmark: {devices} devices x {args.days} day(s) at {reading_seconds} s readings"
        f" in {home}"
    )
    end = days[-1] + timedelta(days=1)
    try:
        from lakehouse import ingest

        started = time.monotonic()
        generated = ingest.run_interval(StageContext(settings, START, end, "bench"))
        generate_s = time.monotonic() - started
        lines = {r.day: r.counts["raw_lines"] for r in generated}

        from spark_apps import bronze, gold, silver
        from spark_apps.session import build_session

        started = time.monotonic()
        spark = build_session(settings, app_name="lakehouse-bench")
        spark.range(1).count()  # the session's first job
        startup_s = time.monotonic() - started
        spark_times: dict[date, dict[str, float]] = {}
        spark_counts: dict[date, dict[str, dict[str, int]]] = {}
        for day in days:
            ctx = StageContext(settings, day, day + timedelta(days=1), "bench", spark)
            spark_times[day], spark_counts[day] = {}, {}
            for name, module in (("bronze", bronze), ("silver", silver), ("gold", gold)):
                started = time.monotonic()
                spark_counts[day][name] = module.run_interval(ctx)[0].counts
                spark_times[day][name] = time.monotonic() - started
            console.print(f"Spark {day}: {sum(spark_times[day].values()):.1f} s")
        spark.stop()

        last = days[-1]
        raw_glob = f"{raw_day_uri(locations(settings).raw_events, last)}/*/*.jsonl.gz"
        out = home / "duckdb"
        out.mkdir()
        duck = duckdb_pipeline(
            raw_glob, locations(settings).raw_devices, out, last, settings.max_lateness_days
        )
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    table = Table(title=f"bronze -> silver -> gold per day, {devices} devices, 2 cores")
    for col in ("", "raw lines", "bronze s", "silver s", "gold s", "total s", "events/s"):
        table.add_column(col, justify="right")
    for n, day in enumerate(days, start=1):
        total = sum(spark_times[day].values())
        table.add_row(
            f"Spark day {n}" + (" (warm-up)" if n == 1 else ""),
            f"{lines[day]:,}",
            *(f"{spark_times[day][s]:.1f}" for s in ("bronze", "silver", "gold")),
            f"{total:.1f}",
            f"{lines[day] / total:,.0f}",
        )
    duck_total = duck["bronze_s"] + duck["silver_s"] + duck["gold_s"]
    table.add_row(
        f"DuckDB day {len(days)}",
        f"{lines[last]:,}",
        *(f"{duck[f'{s}_s']:.1f}" for s in ("bronze", "silver", "gold")),
        f"{duck_total:.1f}",
        f"{lines[last] / duck_total:,.0f}",
    )
    console.print(table)
    console.print("Spark: Delta bronze/silver, Iceberg gold. DuckDB: plain Parquet, no MERGE.")
    console.print(
        f"generation {generate_s:.1f} s; Spark session start-up {startup_s:.1f} s (not counted)"
    )
    spark_last = sum(spark_times[last].values())
    console.print(f"Spark / DuckDB time ratio on day {len(days)}: {spark_last / duck_total:.1f}x")
    silver_counts = spark_counts[last]["silver"]
    console.print(
        "day {} silver rows: Spark {} vs DuckDB {}; quarantined: Spark {} vs DuckDB {}".format(
            len(days),
            silver_counts["inserted"] + silver_counts["already_present"],
            duck["silver_rows"],
            silver_counts["quarantined"],
            duck["quarantined"],
        )
    )


if __name__ == "__main__":
    main()
