"""Bronze: every raw line of the interval lands in Delta, good or bad, with lineage.

Parsed fields are kept as strings (lossless: a JSON number keeps its text); typing and
validation are silver's job. A rerun of an interval replaces that interval's partition.
"""

from __future__ import annotations

import gzip
import re
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import storage
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
from lakehouse.settings import Settings
from lakehouse.tables import ingest_hour_of, locations, raw_day_uri, spark_uri
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
    "invalid_utf8",
    "file_problem",
    *PARSED_FIELDS,
    "_run_id",
    "_ingested_at",
)
# Statistics only for the columns a day's readers filter on (delta_io.STATS_COLUMNS_PROPERTY).
BRONZE_STATS_COLUMNS: tuple[str, ...] = ("ingest_hour", "source_file")
RAW_SCHEMA = "ingest_date DATE, ingest_hour INT, source_file STRING, raw_line STRING"

# Object-level problems: the object cannot be read as lines at all.
EMPTY_OBJECT = "empty_object"
UNREADABLE_GZIP = "unreadable_gzip"


@dataclass(frozen=True)
class RawObject:
    uri: str
    problem: str | None  # None, EMPTY_OBJECT or UNREADABLE_GZIP
    lines: int = 0  # lines in a readable object, split as Spark's text reader splits them


def count_lines(text: bytes) -> int:
    """Lines as Spark's text reader (Hadoop's LineReader) splits them: at \\n, \\r or \\r\\n,
    a final line without a terminator included. Counted in place: an object's lines are never
    materialised as a list."""
    breaks = text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")
    return breaks + (1 if text and not text.endswith((b"\n", b"\r")) else 0)


def inspect_raw_object(uri: str, data: bytes) -> RawObject:
    """Whether an object can be read as gzip text and how many lines it holds. The whole stream
    is decompressed, so a truncated or corrupt object is caught before Spark would fail on it,
    and the lines are counted here rather than in a Spark pass of their own."""
    if not data:
        return RawObject(uri, EMPTY_OBJECT)
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return RawObject(uri, UNREADABLE_GZIP)
    return RawObject(uri, None, count_lines(text))


def scan_raw_day(settings: Settings, raw_events_uri: str, day: date) -> list[RawObject]:
    prefix = raw_day_uri(raw_events_uri, day)
    uris = storage.list_files(settings, prefix)
    if not uris:
        raise StageInputError(
            f"bronze {day}: no raw objects under {prefix}; run the ingest stage for this interval"
        )
    return [inspect_raw_object(uri, storage.read_bytes(settings, uri)) for uri in uris]


def object_key(uri: str) -> str:
    """One spelling for an object, whether Spark (file:/, s3a://) or fsspec (/, s3://) names it."""
    return re.sub(r"^(file:|s3a?:)?/*", "/", uri)


def manifest_counts(
    manifest_files: dict[str, int], lines_read: dict[str, int], problems: dict[str, str]
) -> dict[str, int]:
    """Compare what ingest wrote per object with what was read. Keys of ``lines_read`` and
    ``problems`` are object_key()s; the manifest's are storage URIs."""
    expected = {object_key(uri): n for uri, n in manifest_files.items()}
    readable = {k: n for k, n in expected.items() if k not in problems}
    return {
        "manifest_lines_read": sum(readable.values()),
        "lines_read_from_manifest_objects": sum(lines_read.get(k, 0) for k in readable),
        # Lines ingest wrote into objects that can no longer be read: lost, and said so.
        "manifest_lines_unreadable": sum(n for k, n in expected.items() if k in problems),
        "missing_objects": sum(
            1 for k in expected if k not in lines_read and k not in problems and expected[k] > 0
        ),
        "unlisted_lines": sum(n for k, n in lines_read.items() if k not in expected),
    }


def is_corrupt(raw: Column) -> Column:
    """A line is corrupt unless it is valid JSON whose top level is an object."""
    return F.try_parse_json(raw).isNull() | ~F.ltrim(raw).startswith("{")


def transform_bronze(
    raw: DataFrame, unreadable: DataFrame, run_id: str, ingested_at: datetime
) -> DataFrame:
    """Raw lines plus one row per unreadable object -> bronze rows.

    ``raw``: (ingest_date, ingest_hour, source_file, raw_line); ``unreadable``: the same columns
    with ``file_problem``. Invalid UTF-8 is repaired (U+FFFD) so every reader can load the text,
    and flagged so silver rejects the line.
    """
    lines = raw.select(*raw.columns, F.lit(None).cast("string").alias("file_problem")).unionByName(
        unreadable.select(*raw.columns, "file_problem")
    )
    text = F.make_valid_utf8(F.col("raw_line"))
    checked = lines.select(
        F.col("ingest_date").cast("date").alias("ingest_date"),
        F.col("ingest_hour").cast("int").alias("ingest_hour"),
        F.col("source_file"),
        text.alias("raw_line"),
        (F.col("file_problem").isNotNull() | is_corrupt(text)).alias("is_corrupt"),
        F.coalesce(~F.is_valid_utf8(F.col("raw_line")), F.lit(False)).alias("invalid_utf8"),
        F.col("file_problem"),
    )
    # The JSON is parsed once into one struct column, then split. Written as one projection,
    # Spark would parse the line once per field: a parse inside a CASE branch is not shared
    # (a 3-4x slower stage on a million lines).
    parsed = F.when(~F.col("is_corrupt"), F.from_json(F.col("raw_line"), RAW_TEXT_SCHEMA))
    return checked.withColumn("_parsed", parsed).select(
        *checked.columns,
        *[F.col("_parsed")[name].alias(name) for name in PARSED_FIELDS],
        F.lit(run_id).alias("_run_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    )


def read_raw_lines(
    spark: SparkSession, raw_events_uri: str, day: date, objects: list[RawObject]
) -> DataFrame:
    """The lines of the readable objects, with partition values and the file each came from."""
    readable = [spark_uri(o.uri) for o in objects if o.problem is None]
    if not readable:
        return spark.createDataFrame([], RAW_SCHEMA)
    frame = spark.read.option("basePath", spark_uri(raw_events_uri)).text(readable)
    return frame.select(
        F.lit(day).alias("ingest_date"),
        F.col("ingest_hour").cast("int").alias("ingest_hour"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("value").alias("raw_line"),
    )


def unreadable_rows(spark: SparkSession, day: date, objects: list[RawObject]) -> DataFrame:
    rows = [
        (day, ingest_hour_of(o.uri), o.uri, None, o.problem)
        for o in objects
        if o.problem == UNREADABLE_GZIP
    ]
    return spark.createDataFrame(rows, RAW_SCHEMA + ", file_problem STRING")


def run_day(spark: SparkSession, ctx: StageContext, day: date) -> StageResult:
    loc = locations(ctx.settings)
    result = StageResult(STAGE, day, ctx.run_id)
    objects = scan_raw_day(ctx.settings, loc.raw_events, day)
    # Counted while the objects were checked: the write is the only Spark pass over raw.
    lines_per_object = {object_key(o.uri): o.lines for o in objects if o.problem is None}
    bronze = transform_bronze(
        read_raw_lines(spark, loc.raw_events, day, objects),
        unreadable_rows(spark, day, objects),
        ctx.run_id,
        datetime.now(UTC),
    )
    written = replace_partition(
        bronze,
        spark_uri(loc.bronze_events),
        "ingest_date",
        day,
        ["ingest_date"],
        BRONZE_STATS_COLUMNS,
    )
    problems = {object_key(o.uri): o.problem for o in objects if o.problem}
    result.counts = {
        "raw_objects": len(objects),
        "raw_lines": sum(lines_per_object.values()),
        "unreadable_objects": sum(p == UNREADABLE_GZIP for p in problems.values()),
        "empty_objects": sum(p == EMPTY_OBJECT for p in problems.values()),
        "bronze_rows": written,
    }
    manifest = read_manifest(ctx.settings, day)
    if manifest is not None:
        result.counts.update(manifest_counts(manifest["files"], lines_per_object, problems))
        if problems:
            result.note = "unusable objects: " + ", ".join(
                f"{key} ({problem})" for key, problem in sorted(problems.items())
            )
    return result


def run_interval(ctx: StageContext) -> list[StageResult]:
    from spark_apps.stage_runner import run_stage_days

    return run_stage_days(ctx, STAGE, run_day, checks=_checks)


def _checks(result: StageResult) -> None:
    c = result.counts
    if "manifest_lines_read" in c:
        reconcile(
            STAGE,
            result.day,
            "lines ingested into readable objects (manifest) = lines read from them",
            c["manifest_lines_read"],
            c["lines_read_from_manifest_objects"],
        )
    reconcile(
        STAGE,
        result.day,
        "raw lines read + unreadable objects = bronze rows",
        c["raw_lines"] + c["unreadable_objects"],
        c["bronze_rows"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    from spark_apps.stage_runner import entrypoint

    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
