"""spark_apps.session.spark_conf for the embedded session and for a cluster SparkApplication:
pure settings in, plain strings out (no SparkSession)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_contract import chart_env

from lakehouse.settings import Settings, load_settings
from spark_apps.session import spark_conf, under_spark_submit

ROOT = Path(__file__).resolve().parents[1]
# Keys that only an embedded session may carry: Ivy resolution, the driver's heap, this
# machine's log4j file, loopback binding.
LOCAL_ONLY = {
    "spark.jars.packages",
    "spark.jars.excludes",
    "spark.jars.ivy",
    "spark.jars",
    "spark.driver.memory",
    "spark.driver.extraJavaOptions",
    "spark.driver.bindAddress",
    "spark.driver.host",
}
CATALOG = "spark.sql.catalog.lakehouse"


def table_keys(conf: dict[str, str]) -> dict[str, str]:
    """The Delta, Iceberg and S3A part of a conf."""
    prefixes = ("spark.sql.extensions", "spark.sql.catalog.", "spark.hadoop.fs.s3a.")
    return {k: v for k, v in conf.items() if k.startswith(prefixes)}


@pytest.fixture
def cluster_settings() -> Settings:
    return load_settings({**chart_env(), "LAKEHOUSE_SPARK_MASTER": "local[2]"})


def test_cluster_conf_has_no_local_only_key_or_path(cluster_settings: Settings) -> None:
    conf = spark_conf(cluster_settings, cluster=True)
    assert not LOCAL_ONLY & set(conf)
    text = repr(conf)
    assert str(ROOT) not in text
    assert str(Path.home()) not in text
    assert "127.0.0.1" not in text
    assert all(isinstance(v, str) for v in conf.values())


def test_cluster_conf_wires_the_same_tables_and_storage(cluster_settings: Settings) -> None:
    cluster = spark_conf(cluster_settings, cluster=True)
    assert table_keys(cluster) == table_keys(spark_conf(cluster_settings))
    # ... and that part is the real wiring, not an empty match.
    assert cluster["spark.sql.extensions"].split(",") == [
        "io.delta.sql.DeltaSparkSessionExtension",
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    ]
    assert cluster["spark.sql.catalog.spark_catalog"] == (
        "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert cluster[CATALOG] == "org.apache.iceberg.spark.SparkCatalog"
    assert cluster[f"{CATALOG}.type"] == "jdbc"
    assert cluster[f"{CATALOG}.uri"] == "jdbc:postgresql://lakehouse-postgres:5432/iceberg_catalog"
    assert cluster[f"{CATALOG}.warehouse"] == "s3a://lakehouse-warehouse/iceberg"
    assert cluster["spark.hadoop.fs.s3a.endpoint"] == "http://lakehouse-seaweedfs:8333"
    assert cluster["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert cluster["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert cluster["spark.sql.session.timeZone"] == "UTC"


def test_embedded_conf_resolves_packages_and_binds_loopback(tmp_path: Path) -> None:
    settings = load_settings(
        {"LAKEHOUSE_HOME": str(tmp_path), "LAKEHOUSE_JARS_CACHE": str(tmp_path / "ivy")}
    )
    conf = spark_conf(settings)
    packages = conf["spark.jars.packages"].split(",")
    assert any(p.startswith("io.delta:delta-spark_") for p in packages)
    assert any(p.startswith("org.apache.iceberg:iceberg-spark-runtime-") for p in packages)
    assert any(p.startswith("org.xerial:sqlite-jdbc:") for p in packages)
    assert conf["spark.jars.ivy"] == str(tmp_path / "ivy")
    assert conf["spark.driver.bindAddress"] == conf["spark.driver.host"] == "127.0.0.1"
    log4j = conf["spark.driver.extraJavaOptions"].removeprefix("-Dlog4j2.configurationFile=file:")
    assert Path(log4j) == ROOT / "spark_apps" / "log4j2.properties"
    assert Path(log4j).is_file()
    assert conf[f"{CATALOG}.uri"] == f"jdbc:sqlite:{tmp_path / 'catalog.db'}"


def test_cluster_stage_jvms_compile_with_c1_only_unless_turned_off() -> None:
    quick = spark_conf(load_settings(chart_env()), cluster=True)
    assert quick["spark.executor.extraJavaOptions"] == "-XX:TieredStopAtLevel=1"
    full = load_settings({**chart_env(), "LAKEHOUSE_SPARK_QUICK_JIT": "false"})
    assert "spark.executor.extraJavaOptions" not in spark_conf(full, cluster=True)
    # The embedded session lives for the whole run: it keeps the optimising compiler.
    embedded = spark_conf(load_settings(chart_env()))
    assert "TieredStopAtLevel" not in repr(embedded)


def test_a_remote_master_keeps_packages_but_not_loopback() -> None:
    settings = load_settings({**chart_env(), "LAKEHOUSE_SPARK_MASTER": "spark://spark:7077"})
    conf = spark_conf(settings)
    assert "spark.jars.packages" in conf
    assert "spark.driver.bindAddress" not in conf
    assert "spark.driver.host" not in conf


def test_a_spark_submit_driver_keeps_its_master() -> None:
    """What the SparkApplication's driver sees: no LAKEHOUSE_SPARK_MASTER, a py4j gateway."""
    driver = load_settings({**chart_env(), "PYSPARK_GATEWAY_PORT": "40123"})
    assert driver.spark_master is None
    assert under_spark_submit(driver)
    assert not under_spark_submit(load_settings(chart_env()))
    assert "spark.master" not in spark_conf(driver, cluster=True)
