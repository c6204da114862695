"""The one SparkSession builder: Delta + Iceberg (JDBC catalog) + S3A, all from settings.

The same configuration is used by the embedded runner, the tests and (as sparkConf) by the
SparkApplications the cluster submits, so there is one place where Spark is wired.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.settings import Settings
from lakehouse.tables import locations, spark_uri
from lakehouse.versions import PROVIDED_BY_SPARK, maven_packages

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG4J2_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"

EXTENSIONS = ",".join(
    [
        "io.delta.sql.DeltaSparkSessionExtension",
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    ]
)


# A SparkApplication's driver and executor JVMs live for one interval on a 1-CPU limit: the
# optimising JIT compiler (C2) spends that CPU before its code pays back, so a cluster stage's
# JVMs compile with C1 only. Fresh stage JVMs, one run each way (2026-12-07, 2 cores): a small
# day (58k events) on 1 CPU, bronze 37.1 -> 19.3 s, gold 51.9 -> 28.1 s, silver 56.4 -> 27.8 s;
# 1M events on 2 CPUs, a wash (bronze 29.9, 27.4 -> 33.9, 31.3 s; gold 31.5, 26.8 -> 25.4,
# 23.7 s). The embedded session lives for the whole run and keeps C2.
QUICK_JIT_OPTION = "-XX:TieredStopAtLevel=1"


# Compiled query classes a session keeps (spark.sql.codegen.cache.maxEntries; Spark's default: 100).
CODEGEN_CACHE_ENTRIES = 1000


def stage_jvm_options(settings: Settings) -> list[str]:
    """JVM options for a cluster stage's driver and executors (LAKEHOUSE_SPARK_QUICK_JIT)."""
    return [QUICK_JIT_OPTION] if settings.spark_quick_jit else []


def embedded(settings: Settings) -> bool:
    return (settings.spark_master or "").startswith("local")


def under_spark_submit(settings: Settings) -> bool:
    """A driver spark-submit started (the Spark Operator's): settings keep its master."""
    return settings.spark_master is None


def log4j_java_option(config: Path | str) -> str:
    """The JVM option pointing log4j2 at ``config`` (a file on the driver's filesystem)."""
    return f"-Dlog4j2.configurationFile=file:{config}"


def spark_conf(settings: Settings, cluster: bool = False) -> dict[str, str]:
    """Every Spark setting the lakehouse needs, as plain strings.

    ``cluster=False``: the embedded session (this process starts the JVM): Ivy resolves the
    pinned packages, the driver's heap and log4j file come from this checkout, and a local master
    binds the driver to loopback. ``cluster=True``: the sparkConf of a SparkApplication (or of a
    driver spark-submit already started): jars are baked into the spark image, the driver's size
    comes from the application's driver block and it binds to its pod address, so only the
    table-format, catalog, storage and tuning keys remain (with the executors' JVM options,
    :func:`stage_jvm_options`), and no path of this machine.

    Credentials are never put here: S3A reads AWS_* and the JDBC catalog reads its password
    from the environment-backed settings only when they are set.
    """
    catalog = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {
        "spark.sql.extensions": EXTENSIONS,
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "jdbc",
        f"{catalog}.uri": settings.catalog_uri,
        f"{catalog}.warehouse": spark_uri(locations(settings).iceberg_warehouse),
        f"{catalog}.jdbc.schema-version": "V1",
        # No cached table metadata: a stage that waited for another run's writer lock must
        # write on the snapshot that run committed, not on one cached before it (Iceberg then
        # rejects the write: "Found conflicting files").
        f"{catalog}.cache-enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.default.parallelism": str(settings.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        # Compiled query code is cached by its source. A stage-day compiles about 270 classes
        # (bronze, silver, gold) and Spark keeps 100, so the next day recompiled most of them
        # and the JIT warmed each new class up again. Days after the first, at 58k events a day
        # (three runs each way, alternating): 18.9 -> 17.7 s on day 2, 16.3 -> 14.1 s on day 3.
        # Later days compile ~35 new classes (their date literals); least recently used go first.
        "spark.sql.codegen.cache.maxEntries": str(CODEGEN_CACHE_ENTRIES),
        "spark.ui.enabled": str(settings.spark_ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        # Small machines: keep Delta's log replay and stats collection cheap.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.autoCompact.enabled": "false",
        # Silver's MERGE writes from its source's own partitions: a shuffle by event date first
        # would give one file per date but leave one or two tasks writing a whole day (1M
        # events, day 2: silver 33.4 -> 25.1 s). Up to shuffle-partitions files per touched date
        # remain, which the weekly OPTIMIZE (spark_apps.maintenance) compacts.
        "spark.databricks.delta.merge.repartitionBeforeWrite.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "static",
        # A stage caches one day's rows and reads them two or three times; compressing that
        # short-lived cache costs more CPU than it saves (a third of silver on a million rows).
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # Delta's VACUUM lists a table in this many tasks (Spark's default, 10,000, turns a
        # VACUUM of a small table into minutes of empty tasks).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            settings.shuffle_partitions
        ),
    }
    executor_options = stage_jvm_options(settings) if cluster else []
    if executor_options:
        conf["spark.executor.extraJavaOptions"] = " ".join(executor_options)
    if not cluster:
        conf.update(
            {
                "spark.jars.packages": ",".join(
                    maven_packages(s3=settings.uses_s3, postgres=settings.uses_postgres)
                ),
                "spark.jars.excludes": ",".join(PROVIDED_BY_SPARK),
                "spark.jars.ivy": str(settings.jars_cache),
                "spark.driver.memory": settings.spark_driver_memory,
                "spark.driver.extraJavaOptions": log4j_java_option(LOG4J2_CONFIG),
            }
        )
        if embedded(settings):
            # Embedded mode: the driver (and its UI, when enabled) listens on loopback only.
            conf["spark.driver.bindAddress"] = "127.0.0.1"
            conf["spark.driver.host"] = "127.0.0.1"
    if settings.uses_s3:
        conf.update(
            {
                "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
                "spark.hadoop.fs.s3a.aws.credentials.provider": (
                    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
                ),
                "spark.hadoop.fs.s3a.endpoint.region": settings.aws_region,
                f"{catalog}.io-impl": "org.apache.iceberg.hadoop.HadoopFileIO",
            }
        )
        if settings.s3_endpoint:
            conf["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint
            conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
                settings.s3_endpoint.startswith("https://")
            ).lower()
    return conf


def catalog_credentials_conf(settings: Settings) -> dict[str, str]:
    """JDBC catalog credentials, kept apart so they are never rendered into manifests."""
    catalog = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {}
    if settings.catalog_user:
        conf[f"{catalog}.jdbc.user"] = settings.catalog_user
    if settings.catalog_password:
        conf[f"{catalog}.jdbc.password"] = settings.catalog_password
    return conf


def _resolution_record(conf: dict[str, str]) -> Path:
    """Where the jar paths resolved for this exact package list are remembered."""
    key = hashlib.sha256(
        (conf["spark.jars.packages"] + "|" + conf["spark.jars.excludes"]).encode()
    ).hexdigest()[:16]
    return Path(conf["spark.jars.ivy"]) / f"lakehouse-resolved-{key}.txt"


def _with_cached_jars(conf: dict[str, str]) -> tuple[dict[str, str], Path | None]:
    """Use the jars resolved by an earlier start when all are still cached: skips Ivy's
    resolution (seconds, and a screenful of output) on every start after the first.
    Returns the conf to use and the record to write once Spark has resolved the packages."""
    record = _resolution_record(conf)
    if record.exists():
        jars = record.read_text().split()
        if jars and all(Path(j.removeprefix("file://")).exists() for j in jars):
            cached = {k: v for k, v in conf.items() if k != "spark.jars.packages"}
            cached["spark.jars"] = ",".join(jars)
            return cached, None
    return conf, record


def build_session(settings: Settings, app_name: str = "lakehouse") -> SparkSession:
    """Create (or return the running) SparkSession for the lakehouse."""
    from pyspark.sql import SparkSession

    if under_spark_submit(settings):
        # The JVM, its classpath and heap already exist: only the session's own keys apply.
        conf, record = spark_conf(settings, cluster=True), None
    else:
        settings.jars_cache.mkdir(parents=True, exist_ok=True)
        conf, record = _with_cached_jars(spark_conf(settings))
    if embedded(settings):
        # Spark picks its own address before reading any conf; keep it on loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
    for key, value in {**conf, **catalog_credentials_conf(settings)}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    resolved = spark.sparkContext.getConf().get("spark.jars", "")
    if record is not None and resolved:
        record.write_text("\n".join(resolved.split(",")) + "\n")
    return spark
