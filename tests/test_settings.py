"""Settings, the version matrix and the pipeline definition: pure, no Spark."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lakehouse.pipeline import STAGES, Stage, edges, topological_order
from lakehouse.settings import SettingsError, load_settings, parse_rates
from lakehouse.tables import locations, spark_uri
from lakehouse.versions import maven_packages, parse_versions, versions


def test_embedded_defaults_live_under_lakehouse_home(tmp_path):
    s = load_settings({"LAKEHOUSE_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.raw_uri == str(tmp_path / "raw")
    assert s.warehouse_uri == str(tmp_path / "warehouse")
    assert s.catalog_uri == f"jdbc:sqlite:{tmp_path / 'catalog.db'}"
    assert s.spark_master == "local[2]"
    assert (s.uses_s3, s.uses_postgres) == (False, False)
    assert (s.devices, s.sites, s.reading_seconds) == (40, 4, 60)
    assert s.demo_start == date(2026, 1, 5)


def test_cluster_profile_points_at_s3_and_postgres(tmp_path):
    s = load_settings(
        {
            "LAKEHOUSE_HOME": str(tmp_path),
            "LAKEHOUSE_RAW_URI": "s3://lakehouse-raw/raw",
            "LAKEHOUSE_WAREHOUSE_URI": "s3://lakehouse-warehouse/wh",
            "LAKEHOUSE_CATALOG_URI": "jdbc:postgresql://postgres:5432/iceberg_catalog",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret-value",
            "PYSPARK_GATEWAY_PORT": "40000",  # as when spark-submit started the driver
        }
    )
    assert (s.uses_s3, s.uses_postgres) == (True, True)
    assert s.spark_master is None  # keep the master spark-submit was given
    assert "secret-value" not in repr(s)
    loc = locations(s)
    assert loc.silver_events == "s3://lakehouse-warehouse/wh/silver/iot_events"
    assert spark_uri(loc.silver_events) == "s3a://lakehouse-warehouse/wh/silver/iot_events"
    assert loc.gold_device_hourly == "lakehouse.gold.device_hourly"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_DEVICES": "many"}, "LAKEHOUSE_DEVICES must be an integer"),
        ({"LAKEHOUSE_DEVICES": "0"}, "LAKEHOUSE_DEVICES must be >= 1"),
        ({"LAKEHOUSE_SPARK_UI": "perhaps"}, "LAKEHOUSE_SPARK_UI must be true or false"),
        ({"LAKEHOUSE_DEMO_START": "05/01/2026"}, "LAKEHOUSE_DEMO_START must be YYYY-MM-DD"),
        ({"LAKEHOUSE_BAD_RATES": "late_event=2"}, "expected kind=rate"),
        ({"LAKEHOUSE_MLFLOW_PREFIX": "team a"}, "LAKEHOUSE_MLFLOW_PREFIX must be 1-64 letters"),
        ({"LAKEHOUSE_MLFLOW_PREFIX": "-x"}, "starting with a letter or digit"),
    ],
)
def test_bad_settings_fail_naming_the_variable(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings({"LAKEHOUSE_HOME": str(tmp_path), **env})


def test_rates_parse():
    assert parse_rates("malformed_json=0.01, late_event=0") == {
        "malformed_json": 0.01,
        "late_event": 0.0,
    }
    assert parse_rates(None) == {}


def test_version_matrix_parses_and_rejects_garbage():
    assert parse_versions("# c\nA=1\n\nB = 2.0\n") == {"A": "1", "B": "2.0"}
    with pytest.raises(ValueError, match="line 2"):
        parse_versions("A=1\nB\n")


def test_maven_packages_follow_the_matrix():
    v = versions()
    local = maven_packages(s3=False, postgres=False)
    assert f"io.delta:delta-spark_4.0_2.13:{v['DELTA_VERSION']}" in local
    assert not any("hadoop-aws" in p or "postgresql" in p for p in local)
    cluster = maven_packages(s3=True, postgres=True)
    assert f"org.apache.hadoop:hadoop-aws:{v['HADOOP_VERSION']}" in cluster
    assert f"org.postgresql:postgresql:{v['POSTGRES_JDBC_VERSION']}" in cluster


def test_pyspark_matches_the_matrix():
    import pyspark

    assert pyspark.__version__ == versions()["SPARK_VERSION"]
    jars = {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*")}
    assert jars == {f"hadoop-client-api-{versions()['HADOOP_VERSION']}.jar"}


def test_pipeline_definition_is_a_dag_in_order():
    order = [s.name for s in topological_order(STAGES)]
    assert order[:4] == ["ingest", "bronze", "silver", "gold"]
    assert ("bronze", "silver") in edges()
    cyclic = (Stage("a", "python", "m", ("b",), ""), Stage("b", "python", "m", ("a",), ""))
    with pytest.raises(ValueError, match="cycle"):
        topological_order(cyclic)
