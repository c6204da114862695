"""The pinned version matrix, read from ``versions.env`` at the repository root.

The same file is included by the Makefile and passed to image builds, so a version lives in
exactly one place.
"""

from __future__ import annotations

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
    return parse_versions(VERSIONS_FILE.read_text())


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
