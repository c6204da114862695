"""Bronze: every raw line of the interval lands in Delta, good or bad, with lineage.

Parsed fields are kept as strings (lossless: a JSON number keeps its text); typing and
validation are silver's job. A rerun of an interval replaces that interval's partition.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from lakehouse.context import (
    StageContext,
    StageInputError,
    StageResult,
    interval_parser,
    parse_interval,
    reconcile,
)
from lakehouse.events import OPTIONAL_FIELDS, REQUIRED_FIELDS
from lakehouse.manifest import read_manifest
from lakehouse.tables import join_uri, locations, spark_uri
from spark_apps.delta_io import replace_partition

STAGE = "bronze"
PARSED_FIELDS: tuple[str, ...] = REQUIRED_FIELDS + OPTIONAL_FIELDS
# Every field read as text, so nothing is lost to typing before silver looks at it.
RAW_TEXT_SCHEMA = ", ".join(f"{name} STRING" for name in PARSED_FIELDS)

BRONZE_COLUMNS: tuple[str, ...] = (
    "ingest_date",
    "ingest_hour",
    "source_file",
    "raw_line",
    "is_corrupt",
    *PARSED_FIELDS,
    "_run_id",
    "_ingested_at",
)


def is_corrupt(raw: Column) -> Column:
    """A line is corrupt unless it is valid JSON whose top level is an object."""
    return F.try_parse_json(raw).isNull() | ~F.ltrim(raw).startswith("{")


def transform_bronze(raw: DataFrame, run_id: str, ingested_at: datetime) -> DataFrame:
    """Raw lines (ingest_date, ingest_hour, source_file, raw_line) -> bronze rows."""
    parsed = F.from_json(F.col("raw_line"), RAW_TEXT_SCHEMA)
    corrupt = is_corrupt(F.col("raw_line"))
    return raw.select(
        F.col("ingest_date").cast("date").alias("ingest_date"),
        F.col("ingest_hour").cast("int").alias("ingest_hour"),
        F.col("source_file"),
        F.col("raw_line"),
        corrupt.alias("is_corrupt"),
        *[F.when(~corrupt, parsed[name]).alias(name) for name in PARSED_FIELDS],
        F.lit(run_id).alias("_run_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    )


def raw_day_uri(raw_events_uri: str, day: date) -> str:
    return join_uri(raw_events_uri, f"ingest_date={day.isoformat()}")


def read_raw(spark: SparkSession, raw_events_uri: str, day: date) -> DataFrame:
    """The interval's raw lines with the partition values and the file each came from."""
    base = spark_uri(raw_events_uri)
    path = spark_uri(raw_day_uri(raw_events_uri, day))
    try:
        frame = spark.read.option("basePath", base).text(path)
    except AnalysisException as err:
        if "PATH_NOT_FOUND" in str(err) or "Path does not exist" in str(err):
            raise StageInputError(
                f"bronze {day}: no raw objects at {path}; run the ingest stage for this interval"
            ) from None
        raise
    return frame.select(
        F.col("ingest_date"),
        F.col("ingest_hour"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("value").alias("raw_line"),
    )


def run_day(spark: SparkSession, ctx: StageContext, day: date) -> StageResult:
    started = time.monotonic()
    loc = locations(ctx.settings)
    result = StageResult(STAGE, day, ctx.run_id)
    raw = read_raw(spark, loc.raw_events, day)
    raw_lines = raw.count()
    bronze = transform_bronze(raw, ctx.run_id, datetime.now(UTC))
    written = replace_partition(
        bronze, spark_uri(loc.bronze_events), "ingest_date", day, ["ingest_date"]
    )
    result.counts = {"raw_lines": raw_lines, "bronze_rows": written}
    manifest = read_manifest(ctx.settings, day)
    if manifest is not None:
        result.counts["manifest_lines"] = int(manifest["lines"])
    result.seconds = time.monotonic() - started
    return result


def run_interval(ctx: StageContext) -> list[StageResult]:
    from spark_apps.stage_runner import run_stage_days

    return run_stage_days(ctx, STAGE, run_day, checks=_checks)


def _checks(result: StageResult) -> None:
    c = result.counts
    if "manifest_lines" in c:
        reconcile(
            STAGE,
            result.day,
            "lines ingested (manifest) = raw lines read",
            c["manifest_lines"],
            c["raw_lines"],
        )
    reconcile(STAGE, result.day, "raw lines read = bronze rows", c["raw_lines"], c["bronze_rows"])


def main(argv: Sequence[str] | None = None) -> int:
    from spark_apps.stage_runner import entrypoint

    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
