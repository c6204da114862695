"""Spark's Iceberg JdbcCatalog (gold tables) and pyiceberg's SqlCatalog (ML score tables) share
one catalog database: each lists and loads the other's tables, and every table row says what it
is (``iceberg_type = 'TABLE'``), whichever side created the database, on embedded SQLite.

Each case has its own catalog database and name, registered in the shared session, so nothing
another test reads is touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.settings import Settings, load_settings
from lakehouse.tables import locations
from ml import lake

ROWS = pa.table({"device_id": ["dev-1", "dev-2"], "score": [0.25, 0.75]})


def own_settings(tmp_path: Path, name: str) -> Settings:
    home = tmp_path / name
    home.mkdir()
    return load_settings({"LAKEHOUSE_HOME": str(home), "LAKEHOUSE_CATALOG_NAME": name})


def register(spark: Any, settings: Settings, **extra: str) -> list[str]:
    """Make the settings' catalog known to the running session (Spark loads catalogs lazily)."""
    from spark_apps.session import spark_conf

    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {k: v for k, v in spark_conf(settings, cluster=True).items() if k.startswith(prefix)}
    conf |= {f"{prefix}.{k}": v for k, v in extra.items()}
    for key, value in conf.items():
        spark.conf.set(key, value)
    return list(conf)


@pytest.fixture
def session(spark: Any):
    registered: list[str] = []
    yield spark, registered
    for key in registered:
        spark.conf.unset(key)


def catalog_rows(settings: Settings) -> dict[str, str | None]:
    path = settings.catalog_uri.removeprefix("jdbc:sqlite:")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT table_namespace, table_name, iceberg_type FROM iceberg_tables "
            "WHERE catalog_name = ?",
            (settings.catalog_name,),
        ).fetchall()
    return {f"{ns}.{name}": kind for ns, name, kind in rows}


def spark_creates(spark: Any, settings: Settings, table: str) -> None:
    name = f"{settings.catalog_name}.{table}"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog_name}.gold")
    spark.sql(f"CREATE TABLE {name} (device_id STRING, score DOUBLE) USING iceberg")
    spark.sql(f"INSERT INTO {name} VALUES ('dev-1', 0.25), ('dev-2', 0.75)")


def pyiceberg_creates(settings: Settings, table: str) -> None:
    cat = lake.catalog(settings, locations(settings).iceberg_warehouse)
    cat.create_namespace_if_not_exists("gold")
    cat.create_table(table, schema=ROWS.schema).append(ROWS)


def assert_both_see_both(spark: Any, settings: Settings) -> None:
    cat = lake.catalog(settings, locations(settings).iceberg_warehouse)
    assert sorted(cat.list_tables("gold")) == [("gold", "by_pyiceberg"), ("gold", "by_spark")]
    shown = spark.sql(f"SHOW TABLES IN {settings.catalog_name}.gold").collect()
    assert sorted(r.tableName for r in shown) == ["by_pyiceberg", "by_spark"]
    expected = [("dev-1", 0.25), ("dev-2", 0.75)]
    for table in ("gold.by_pyiceberg", "gold.by_spark"):
        read = cat.load_table(table).scan().to_arrow().sort_by("device_id")
        assert list(zip(*read.to_pydict().values(), strict=True)) == expected, table
        rows = spark.sql(f"SELECT * FROM {settings.catalog_name}.{table} ORDER BY device_id")
        assert [tuple(r) for r in rows.collect()] == expected, table
    assert catalog_rows(settings) == {"gold.by_pyiceberg": "TABLE", "gold.by_spark": "TABLE"}


def test_spark_creates_the_catalog_then_pyiceberg_joins(session, tmp_path):
    spark, registered = session
    settings = own_settings(tmp_path, "interop_spark_first")
    registered += register(spark, settings)
    spark_creates(spark, settings, "gold.by_spark")
    pyiceberg_creates(settings, "gold.by_pyiceberg")
    assert_both_see_both(spark, settings)


def test_pyiceberg_creates_the_catalog_then_spark_joins(session, tmp_path):
    spark, registered = session
    settings = own_settings(tmp_path, "interop_pyiceberg_first")
    pyiceberg_creates(settings, "gold.by_pyiceberg")
    registered += register(spark, settings)
    spark_creates(spark, settings, "gold.by_spark")
    assert_both_see_both(spark, settings)


def test_pyiceberg_upgrades_a_v0_catalog_instead_of_writing_untyped_rows(session, tmp_path):
    """A catalog database from before views (no iceberg_type column, Iceberg Java's V0):
    pyiceberg migrates it as Spark's JdbcCatalog does with jdbc.schema-version=V1."""
    spark, registered = session
    settings = own_settings(tmp_path, "interop_v0")
    registered += register(spark, settings, **{"jdbc.schema-version": "V0"})
    spark_creates(spark, settings, "gold.by_spark")
    path = settings.catalog_uri.removeprefix("jdbc:sqlite:")
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(iceberg_tables)")}
    assert "iceberg_type" not in columns  # really a V0 database

    pyiceberg_creates(settings, "gold.by_pyiceberg")

    # Spark's V0 row has no type; NULL counts as a table for both catalogs (V1 list queries).
    assert catalog_rows(settings) == {"gold.by_pyiceberg": "TABLE", "gold.by_spark": None}
    cat = lake.catalog(settings, locations(settings).iceberg_warehouse)
    assert sorted(cat.list_tables("gold")) == [("gold", "by_pyiceberg"), ("gold", "by_spark")]
    assert len(cat.load_table("gold.by_spark").scan().to_arrow()) == 2
