"""Benchmark: events per second through bronze -> silver -> gold on embedded Spark, with the same
logic in DuckDB in the same process as a reference.

    .venv/bin/python bench/pipeline.py --events 1000000 --days 2
    .venv/bin/python bench/pipeline.py --scale 300000,1000000,3000000

``--days`` consecutive days are generated, each with enough devices to reach ``--events``
readings, and run one day at a time in one SparkSession, as the runner does. The first day pays
for the JVM's warm-up (JIT compilation, class loading); later days show the steady state, and
the ratio to DuckDB is taken on the last day. Spark session start-up and generation are reported
apart from the stage times. DuckDB reads the same raw files and writes plain Parquet (no table
format, no MERGE, no transactions): it is the single-node floor for the computation, not a
like-for-like lakehouse. Both engines' silver and quarantine counts are printed so a difference
in logic shows up next to the times. ``--scale`` runs the comparison once per daily volume and
prints seconds per million events for each stage, so a cost that grows faster than the data
shows up as a rising column.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lakehouse.context import StageContext
from lakehouse.events import FUTURE_TOLERANCE_SECONDS, INVALID_KEY_CHARACTERS
from lakehouse.settings import load_settings
from lakehouse.tables import locations, raw_day_uri

START = date(2026, 1, 5)
STAGES = ("bronze", "silver", "gold")
READING_SECONDS = 60
console = Console()


@dataclass
class Point:
    """One benchmark run: per-day Spark stage times, DuckDB's on the last day, and counts."""

    devices: int
    days: list[date]
    lines: dict[date, int] = field(default_factory=dict)
    spark: dict[date, dict[str, float]] = field(default_factory=dict)
    spark_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    duck: dict[str, float | int] = field(default_factory=dict)
    generate_s: float = 0.0
    startup_s: float = 0.0

    @property
    def last(self) -> date:
        return self.days[-1]

    def spark_total(self, day: date) -> float:
        return sum(self.spark[day].values())

    def duck_total(self) -> float:
        return sum(float(self.duck[f"{s}_s"]) for s in STAGES)


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


def run_point(events: int, ndays: int, keep: bool) -> Point:
    """Generate ``ndays`` days of ``events`` readings, run them through Spark day by day, then
    the last day through DuckDB."""
    devices = max(1, math.ceil(events / (86_400 // READING_SECONDS)))
    point = Point(devices, [START + timedelta(days=i) for i in range(ndays)])
    home = Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
    settings = load_settings(
        {
            **os.environ,
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_DEVICES": str(devices),
            "LAKEHOUSE_SITES": str(max(1, devices // 50)),
            "LAKEHOUSE_READING_SECONDS": str(READING_SECONDS),
        }
    )
    console.print(
        f"Benchmark: {devices} devices x {ndays} day(s) at {READING_SECONDS} s readings in {home}"
    )
    try:
        from lakehouse import ingest

        started = time.monotonic()
        end = point.last + timedelta(days=1)
        generated = ingest.run_interval(StageContext(settings, START, end, "bench"))
        point.generate_s = time.monotonic() - started
        point.lines = {r.day: r.counts["raw_lines"] for r in generated}

        from spark_apps import bronze, gold, silver
        from spark_apps.session import build_session

        started = time.monotonic()
        spark = build_session(settings, app_name="lakehouse-bench")
        spark.range(1).count()  # the session's first job
        point.startup_s = time.monotonic() - started
        for day in point.days:
            ctx = StageContext(settings, day, day + timedelta(days=1), "bench", spark)
            point.spark[day] = {}
            for name, module in zip(STAGES, (bronze, silver, gold), strict=True):
                started = time.monotonic()
                point.spark_counts[name] = module.run_interval(ctx)[0].counts
                point.spark[day][name] = time.monotonic() - started
            console.print(f"Spark {day}: {point.spark_total(day):.1f} s")
        spark.stop()

        raw_glob = f"{raw_day_uri(locations(settings).raw_events, point.last)}/*/*.jsonl.gz"
        out = home / "duckdb"
        out.mkdir()
        point.duck = duckdb_pipeline(
            raw_glob, locations(settings).raw_devices, out, point.last, settings.max_lateness_days
        )
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    return point


def day_table(point: Point) -> Table:
    """Per-stage seconds of every Spark day and of DuckDB on the last day, and their ratio."""
    table = Table(title=f"bronze -> silver -> gold per day, {point.devices} devices, 2 cores")
    for col in ("", "raw lines", *(f"{s} s" for s in STAGES), "total s", "events/s"):
        table.add_column(col, justify="right")
    for n, day in enumerate(point.days, start=1):
        total = point.spark_total(day)
        table.add_row(
            f"Spark day {n}" + (" (warm-up)" if n == 1 else ""),
            f"{point.lines[day]:,}",
            *(f"{point.spark[day][s]:.1f}" for s in STAGES),
            f"{total:.1f}",
            f"{point.lines[day] / total:,.0f}",
        )
    duck_total = point.duck_total()
    table.add_row(
        f"DuckDB day {len(point.days)}",
        f"{point.lines[point.last]:,}",
        *(f"{point.duck[f'{s}_s']:.1f}" for s in STAGES),
        f"{duck_total:.1f}",
        f"{point.lines[point.last] / duck_total:,.0f}",
    )
    spark_last = point.spark[point.last]
    table.add_row(
        "Spark / DuckDB",
        "",
        *(f"{spark_last[s] / max(float(point.duck[f'{s}_s']), 1e-3):.1f}x" for s in STAGES),
        f"{point.spark_total(point.last) / duck_total:.1f}x",
        "",
    )
    return table


def scale_table(points: list[Point]) -> Table:
    """Seconds per million raw lines on the last day, per stage, for each daily volume."""
    table = Table(title="scale curve: seconds per million events on the last day (2 cores)")
    for col in ("events/day", *(f"Spark {s}" for s in STAGES), "Spark total", "DuckDB", "ratio"):
        table.add_column(col, justify="right")
    for point in points:
        millions = point.lines[point.last] / 1e6
        spark_last = point.spark[point.last]
        table.add_row(
            f"{point.lines[point.last]:,}",
            *(f"{spark_last[s] / millions:.1f}" for s in STAGES),
            f"{point.spark_total(point.last) / millions:.1f}",
            f"{point.duck_total() / millions:.1f}",
            f"{point.spark_total(point.last) / point.duck_total():.1f}x",
        )
    return table


def report(point: Point) -> None:
    console.print(day_table(point))
    console.print("Spark: Delta bronze/silver, Iceberg gold. DuckDB: plain Parquet, no MERGE.")
    console.print(
        f"generation {point.generate_s:.1f} s; Spark session start-up {point.startup_s:.1f} s"
        " (not counted)"
    )
    silver_counts = point.spark_counts["silver"]
    console.print(
        "day {} silver rows: Spark {} vs DuckDB {}; quarantined: Spark {} vs DuckDB {}".format(
            len(point.days),
            silver_counts["inserted"] + silver_counts["already_present"],
            point.duck["silver_rows"],
            silver_counts["quarantined"],
            point.duck["quarantined"],
        )
    )


def parse_scale(text: str) -> list[int]:
    try:
        volumes = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of event counts: {text!r}") from None
    if not volumes or min(volumes) < 1:
        raise argparse.ArgumentTypeError(f"event counts must be at least 1: {text!r}")
    return volumes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="readings per day")
    parser.add_argument(
        "--days", type=int, default=2, help="consecutive days (the first warms the JVM up)"
    )
    parser.add_argument(
        "--scale",
        type=parse_scale,
        metavar="N,N,...",
        help="run once per daily volume (e.g. 300000,1000000,3000000) and print the scale curve",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's LAKEHOUSE_HOME")
    args = parser.parse_args()
    if args.events < 1 or args.days < 1:
        parser.error("--events and --days must be at least 1")

    points = []
    for events in args.scale or [args.events]:
        points.append(run_point(events, args.days, args.keep))
        report(points[-1])
    if args.scale:
        console.print(scale_table(points))


if __name__ == "__main__":
    main()
