"""The pinned version matrix, read from ``versions.env`` at the repository root.

The same file is included by the Makefile and passed to image builds, so a version lives in
exactly one place. One rule everywhere (scripts/versions.sh for the scripts): a key of the
file already set in the environment wins, which is how ``make images SPARK_VERSION=...``
reaches every reader.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parent.parent / "versions.env"


def parse_versions(text: str) -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines and ``#`` comments are ignored."""
    versions: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"versions.env line {number}: expected KEY=VALUE, got {raw!r}")
        versions[key.strip()] = value.strip()
    return versions


@cache
def versions() -> dict[str, str]:
    pinned = parse_versions(VERSIONS_FILE.read_text())
    return {k: os.environ.get(k, "").strip() or v for k, v in pinned.items()}


def spark_minor(spark_version: str) -> str:
    return ".".join(spark_version.split(".")[:2])


def maven_packages(*, s3: bool, postgres: bool) -> list[str]:
    """Maven coordinates Spark resolves for the lakehouse: Delta, Iceberg and the catalog driver,
    plus hadoop-aws (which brings its AWS SDK bundle) only when data lives in object storage."""
    v = versions()
    scala = v["SCALA_BINARY_VERSION"]
    minor = spark_minor(v["SPARK_VERSION"])
    packages = [
        f"io.delta:delta-spark_{minor}_{scala}:{v['DELTA_VERSION']}",
        f"org.apache.iceberg:iceberg-spark-runtime-{minor}_{scala}:{v['ICEBERG_VERSION']}",
        f"org.xerial:sqlite-jdbc:{v['SQLITE_JDBC_VERSION']}",
    ]
    if postgres:
        packages.append(f"org.postgresql:postgresql:{v['POSTGRES_JDBC_VERSION']}")
    if s3:
        packages.append(f"org.apache.hadoop:hadoop-aws:{v['HADOOP_VERSION']}")
    return packages


# Transitive dependencies of the packages above that pyspark already ships (often in a newer
# version). Excluding them keeps one copy of each library on the classpath: Spark's own.
PROVIDED_BY_SPARK: tuple[str, ...] = (
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-jackson",
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.fasterxml.jackson.core:jackson-annotations",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.slf4j:slf4j-api",
    "org.xerial.snappy:snappy-java",
    "com.github.luben:zstd-jni",
    "org.roaringbitmap:RoaringBitmap",
    "org.roaringbitmap:shims",
    "commons-logging:commons-logging",
    "commons-pool:commons-pool",
    "com.google.code.findbugs:jsr305",
    "io.airlift:aircompressor",
)
