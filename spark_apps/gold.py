"""Gold (Iceberg): hourly device metrics and daily site summaries, recomputed only for the keys
the interval touched and MERGEd, so late events correct earlier hours and reruns change nothing.

The keys touched by day D are the (device, hour) and (site, date) of silver rows first ingested
on D. Recomputing them reads every silver row of those keys, whenever it arrived.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.context import (
    StageContext,
    StageResult,
    interval_parser,
    parse_interval,
    reconcile,
)
from lakehouse.tables import GOLD_NAMESPACE, locations, spark_uri
from spark_apps.delta_io import read_upstream

STAGE = "gold"

DEVICE_HOURLY_DDL = """
    device_id STRING NOT NULL, site_id STRING, sensor_type STRING, unit STRING,
    hour_start TIMESTAMP NOT NULL, event_date DATE NOT NULL,
    events BIGINT, min_value DOUBLE, max_value DOUBLE, mean_value DOUBLE,
    stddev_value DOUBLE, p95_value DOUBLE
"""
SITE_DAILY_DDL = """
    site_id STRING NOT NULL, event_date DATE NOT NULL, sensor_type STRING NOT NULL,
    devices BIGINT, events BIGINT, min_value DOUBLE, max_value DOUBLE, mean_value DOUBLE
"""


def transform_touched_hours(silver_new: DataFrame) -> DataFrame:
    """Distinct (device_id, hour_start) keys of newly ingested silver rows."""
    return silver_new.select(
        F.col("device_id"), F.date_trunc("hour", F.col("event_ts")).alias("hour_start")
    ).distinct()


def exact_percentile(values: Column, fraction: float) -> Column:
    """The exact percentile of ``values`` in a group, as Spark's ``percentile`` defines it
    (linear interpolation between the two closest ranks), from the group's sorted values. An
    hour holds a few dozen readings per device: sorting them is cheaper than ``percentile``'s
    per-group hash map of counts (2 of the 5 s gold spends on a million events)."""
    ordered = F.array_sort(F.collect_list(values))
    position = (F.size(ordered) - 1) * F.lit(fraction)
    lower, higher = F.floor(position), F.ceil(position)
    low = F.element_at(ordered, lower.cast("int") + 1)
    high = F.element_at(ordered, higher.cast("int") + 1)
    return F.when((lower == higher) | (low == high), low).otherwise(
        (higher - position) * low + (position - lower) * high
    )


def transform_device_hourly(silver: DataFrame, touched: DataFrame) -> DataFrame:
    """Hourly metrics per device for the touched keys, from every silver row of those keys."""
    rows = silver.withColumn("hour_start", F.date_trunc("hour", F.col("event_ts"))).join(
        touched, on=["device_id", "hour_start"], how="left_semi"
    )
    return (
        rows.groupBy("device_id", "site_id", "sensor_type", "unit", "hour_start")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.min("value").alias("min_value"),
            F.max("value").alias("max_value"),
            F.avg("value").alias("mean_value"),
            F.stddev_samp("value").alias("stddev_value"),
            exact_percentile(F.col("value"), 0.95).alias("p95_value"),
        )
        .select(
            "device_id",
            "site_id",
            "sensor_type",
            "unit",
            "hour_start",
            F.to_date("hour_start").alias("event_date"),
            "events",
            "min_value",
            "max_value",
            "mean_value",
            "stddev_value",
            "p95_value",
        )
    )


def transform_site_daily(silver: DataFrame, touched_sites: DataFrame) -> DataFrame:
    """Daily per-site, per-sensor-type summary for the touched (site_id, event_date) keys."""
    rows = silver.join(touched_sites, on=["site_id", "event_date"], how="left_semi")
    return rows.groupBy("site_id", "event_date", "sensor_type").agg(
        F.countDistinct("device_id").alias("devices"),
        F.count(F.lit(1)).alias("events"),
        F.min("value").alias("min_value"),
        F.max("value").alias("max_value"),
        F.avg("value").alias("mean_value"),
    )


def ensure_gold_tables(spark: SparkSession, device_hourly: str, site_daily: str) -> None:
    catalog = device_hourly.split(".")[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.{GOLD_NAMESPACE}")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {device_hourly} ({DEVICE_HOURLY_DDL}) USING iceberg "
        "PARTITIONED BY (event_date) TBLPROPERTIES ('format-version'='2')"
    )
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {site_daily} ({SITE_DAILY_DDL}) USING iceberg "
        "PARTITIONED BY (event_date) TBLPROPERTIES ('format-version'='2')"
    )


def merge_upsert(
    spark: SparkSession,
    table: str,
    updates: DataFrame,
    keys: Sequence[str],
    event_dates: Sequence[date],
) -> None:
    """Replace the rows of ``table`` matching ``keys`` with ``updates`` (insert the rest).

    Every update lies on one of ``event_dates``; naming them as literals lets Iceberg read and
    rewrite only those partitions instead of scanning the whole table for matches.
    """
    if not event_dates:
        return
    view = f"gold_updates_{table.split('.')[-1]}"
    updates.createOrReplaceTempView(view)
    dates = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(event_dates))
    on = " AND ".join(
        [f"t.event_date IN ({dates})", "t.event_date = s.event_date"]
        + [f"t.{k} = s.{k}" for k in keys if k != "event_date"]
    )
    spark.sql(
        f"MERGE INTO {table} t USING {view} s ON {on} "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def run_day(spark: SparkSession, ctx: StageContext, day: date) -> StageResult:
    loc = locations(ctx.settings)
    result = StageResult(STAGE, day, ctx.run_id)
    silver = read_upstream(spark, spark_uri(loc.silver_events), STAGE, day, "silver")
    new_rows = silver.filter(F.col("ingest_date") == F.lit(day))
    touched = transform_touched_hours(new_rows).persist()
    # One action for the key count and the dates they fall on (each action is a few jobs).
    keys = touched.agg(
        F.count(F.lit(1)).alias("n"), F.collect_set(F.to_date("hour_start")).alias("dates")
    ).first()
    touched_keys, dates = keys["n"], sorted(keys["dates"])
    # Prune silver to the dates the touched keys live in before recomputing them.
    silver_dates = silver.filter(F.col("event_date").isin(dates)) if dates else silver.limit(0)

    hourly = transform_device_hourly(silver_dates, touched).persist()
    touched_sites = hourly.select("site_id", "event_date").distinct()
    daily = transform_site_daily(silver_dates, touched_sites).persist()
    try:
        ensure_gold_tables(spark, loc.gold_device_hourly, loc.gold_site_daily)
        hourly_rows = hourly.count()
        daily_rows = daily.count()
        merge_upsert(spark, loc.gold_device_hourly, hourly, ["device_id", "hour_start"], dates)
        merge_upsert(
            spark, loc.gold_site_daily, daily, ["site_id", "event_date", "sensor_type"], dates
        )
    finally:
        for frame in (touched, hourly, daily):
            frame.unpersist()
    result.counts = {
        "touched_device_hours": touched_keys,
        "device_hourly_rows": hourly_rows,
        "site_daily_rows": daily_rows,
        "event_dates": len(dates),
    }
    return result


def run_interval(ctx: StageContext) -> list[StageResult]:
    from spark_apps.stage_runner import run_stage_days

    return run_stage_days(ctx, STAGE, run_day, checks=_checks)


def _checks(result: StageResult) -> None:
    c = result.counts
    reconcile(
        STAGE,
        result.day,
        "touched device-hours = device_hourly rows recomputed",
        c["touched_device_hours"],
        c["device_hourly_rows"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    from spark_apps.stage_runner import entrypoint

    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
