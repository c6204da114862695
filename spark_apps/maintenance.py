"""Weekly table maintenance through Spark: Delta OPTIMIZE and VACUUM; Iceberg rewrite_data_files,
expire_snapshots and remove_orphan_files.

    python -m spark_apps.maintenance --start D --end D [--formats delta,iceberg] [--retain-days 7]

Retention is measured from ``--end`` (midnight UTC), not from the wall clock, so a re-run of the
same interval removes the same files and snapshots; it is never shorter than each engine's safety
margin from now (Delta VACUUM: 7 days; Iceberg orphan files: 1 day), because files of a write
still in flight look unreferenced. Each table is maintained under its writer's lock (see
``lakehouse.locks``), so maintenance never commits to a table while its stage writes it. Tables
that do not exist yet are skipped. Prints one JSON line per table and action.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lakehouse.context import interval_parser, parse_interval
from lakehouse.locks import writer_lock
from lakehouse.settings import Settings, SettingsError, load_settings
from lakehouse.tables import locations, spark_uri
from lakehouse.tables import table as registered

STAGE = "maintenance"
FORMATS = ("delta", "iceberg")
# Delta refuses VACUUM below its default retention (7 days) unless a safety check is disabled.
MIN_RETAIN_DAYS = 7
# Iceberg's remove_orphan_files refuses a cutoff less than a day old (in-flight writes).
ORPHAN_MIN_AGE = timedelta(days=1)
ICEBERG_RETAIN_LAST = 5
SQL_TIMESTAMP = "%Y-%m-%d %H:%M:%S"  # read in the session time zone, UTC


def delta_paths(settings: Settings) -> dict[str, str]:
    """Every Delta table of the registry (name -> Spark path)."""
    return {name: spark_uri(uri) for name, uri in locations(settings).tables(fmt="delta").items()}


def iceberg_tables(settings: Settings) -> list[str]:
    """Every Iceberg table of the registry, fully qualified (catalog.namespace.table)."""
    return list(locations(settings).tables(fmt="iceberg").values())


def cutoff(end: date, retain_days: int) -> datetime:
    return datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=retain_days)


def vacuum_hours(end: date, retain_days: int, now: datetime) -> int:
    """VACUUM's RETAIN (Delta counts it back from now) that puts the cutoff at ``end`` minus
    ``retain_days``, never below Delta's minimum."""
    hours = math.ceil((now - cutoff(end, retain_days)).total_seconds() / 3600)
    return max(hours, MIN_RETAIN_DAYS * 24)


def orphan_cutoff(end: date, retain_days: int, now: datetime) -> datetime:
    """Files older than this and referenced by no snapshot are orphans."""
    return min(cutoff(end, retain_days), now - ORPHAN_MIN_AGE)


def table_lock(settings: Settings, name: str) -> Any:
    """The writer lock of a registered table; a wait is reported on stderr."""
    writer = registered(name).writer
    return writer_lock(settings, writer, on_wait=lambda msg: print(msg, file=sys.stderr))


def _row(df: Any) -> dict[str, Any]:
    rows = df.collect()
    return {k: v for k, v in rows[0].asDict().items() if isinstance(v, int | float)} if rows else {}


def maintain_delta(
    spark: Any, settings: Settings, end: date, retain_days: int, now: datetime | None = None
) -> list[dict]:
    from spark_apps.delta_io import delta_exists

    hours = vacuum_hours(end, retain_days, now or datetime.now(UTC))
    out = []
    for name, path in delta_paths(settings).items():
        if not delta_exists(spark, path):
            out.append({"table": name, "action": "skip", "reason": "not a Delta table yet"})
            continue
        started = time.monotonic()
        with table_lock(settings, name):
            optimized = spark.sql(f"OPTIMIZE delta.`{path}`").select("metrics.*")
            out.append({"table": name, "action": "optimize", **_row(optimized)})
            # VACUUM keeps every file a version newer than the cutoff still needs.
            spark.sql(f"VACUUM delta.`{path}` RETAIN {hours} HOURS").collect()
        out.append(
            {"table": name, "action": "vacuum", "retain_hours": hours,
             "seconds": round(time.monotonic() - started, 2)}
        )  # fmt: skip
    return out


def maintain_iceberg(
    spark: Any, settings: Settings, end: date, retain_days: int, now: datetime | None = None
) -> list[dict]:
    catalog = settings.catalog_name
    older_than = cutoff(end, retain_days).strftime(SQL_TIMESTAMP)
    orphans_older_than = orphan_cutoff(end, retain_days, now or datetime.now(UTC))
    out = []
    for table in iceberg_tables(settings):
        if not spark.catalog.tableExists(table):
            out.append({"table": table, "action": "skip", "reason": "no such table yet"})
            continue
        ident = table.removeprefix(f"{catalog}.")
        calls = {
            "rewrite_data_files": f"table => '{ident}'",
            "expire_snapshots": (
                f"table => '{ident}', older_than => TIMESTAMP '{older_than}', "
                f"retain_last => {ICEBERG_RETAIN_LAST}"
            ),
            "remove_orphan_files": (
                f"table => '{ident}', "
                f"older_than => TIMESTAMP '{orphans_older_than.strftime(SQL_TIMESTAMP)}'"
            ),
        }
        with table_lock(settings, ident):
            for procedure, args in calls.items():
                result = spark.sql(f"CALL {catalog}.system.{procedure}({args})")
                if procedure == "remove_orphan_files":
                    # One row per removed file: report how many, not the first path.
                    count = result.count()
                    out.append({"table": table, "action": procedure, "orphan_files": count})
                else:
                    out.append({"table": table, "action": procedure, **_row(result)})
    return out


def parser() -> Any:
    p = interval_parser(__doc__.splitlines()[0])
    p.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help="comma-separated table formats to maintain (delta, iceberg)",
    )
    p.add_argument("--retain-days", type=int, default=MIN_RETAIN_DAYS, help="retention in days")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = parse_interval(p, argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        p.error(f"--formats: expected some of {', '.join(FORMATS)}, got {args.formats!r}")
    if args.retain_days < 1:
        p.error("--retain-days must be at least 1")
    try:
        settings = load_settings()
    except SettingsError as err:
        print(f"{STAGE} failed: {err}", file=sys.stderr)
        return 1
    from spark_apps.session import build_session

    spark = build_session(settings, app_name=f"lakehouse-{STAGE}")
    steps = {"delta": maintain_delta, "iceberg": maintain_iceberg}
    for fmt in formats:
        for line in steps[fmt](spark, settings, args.end, args.retain_days):
            print(json.dumps({"stage": STAGE, "run_id": args.run_id, "format": fmt, **line}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
