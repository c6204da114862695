"""Training run of the spark image's class archive (AppCDS), run once at build time under
spark-submit with -XX:ArchiveClassesAtExit: one small day through ingest, bronze, silver and gold
on local files in one JVM, so the archive holds the classes a stage driver loads (Spark SQL,
Delta, Iceberg with its JDBC catalog, Parquet, Hadoop). Any class a later run needs beyond these
still loads from its jar as usual: the archive only makes start-up cheaper."""

from __future__ import annotations

import sys

from lakehouse import ingest
from spark_apps import bronze, gold, silver

INTERVAL = ["--start", "2026-01-05", "--run-id", "class-archive"]

for stage in (ingest, bronze, silver, gold):
    code = stage.main(INTERVAL)
    if code != 0:
        sys.exit(f"class archive: {stage.__name__} failed with exit code {code}")
