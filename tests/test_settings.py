"""Settings, the version matrix and the pipeline definition: pure, no Spark."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lakehouse.pipeline import STAGES, Stage, edges, topological_order
from lakehouse.settings import SettingsError, load_settings, parse_rates, settings_keys
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
    cyclic = (
        Stage("a", "python", "m", ("b",), "", ("catalog",)),
        Stage("b", "python", "m", ("a",), "", ("catalog",)),
    )
    with pytest.raises(ValueError, match="cycle"):
        topological_order(cyclic)


def test_every_key_the_code_reads_is_documented():
    import lakehouse.settings as module

    undocumented = [k for k in settings_keys() if k not in module.__doc__]
    assert undocumented == [], "add them to the table in lakehouse/settings.py"


@pytest.mark.parametrize("server", ["seaweedfs", "minio"])
def test_the_chart_gives_only_keys_the_code_reads(server):
    """A ConfigMap key or contract env entry the code never reads is a typo or a leftover."""
    import json

    from cluster_contract import render_default_install

    docs = render_default_install(sets=(f"objectStore.server={server}",))
    (settings_cm,) = [d for d in docs if d["metadata"]["name"] == "lakehouse-settings"]
    (pipeline_cm,) = [d for d in docs if d["metadata"]["name"] == "lakehouse-pipeline"]
    contract = json.loads(pipeline_cm["data"]["deployment.json"])
    secret_env = {e["name"] for s in contract["services"].values() for e in s["secretEnv"]}
    assert set(settings_cm["data"]) - settings_keys() == set()
    assert secret_env - settings_keys() == set()
    # ... and they are the real thing, not an empty match.
    assert {"LAKEHOUSE_WAREHOUSE_URI", "LAKEHOUSE_MAX_LATENESS_DAYS"} <= set(settings_cm["data"])
    assert {"AWS_ACCESS_KEY_ID", "LAKEHOUSE_CATALOG_PASSWORD"} <= secret_env


def test_stages_declare_the_services_their_pods_get():
    tables = {"objectStore", "catalog"}  # every stage takes its writer lock in the catalog db
    assert {s.name: set(s.services) for s in STAGES} == {
        "ingest": tables,
        "bronze": tables,
        "silver": tables,
        "gold": tables,
        "features": tables | {"mlflow"},
        "train_anomaly": tables | {"mlflow"},
        "train_forecast": tables | {"mlflow"},
        "score": tables | {"mlflow"},
        "report": tables | {"mlflow"},
    }


def test_a_stage_with_an_unknown_service_is_refused():
    from lakehouse.pipeline import _check_services

    with pytest.raises(ValueError, match=r"stage 'x' uses unknown service\(s\) \['s3'\]"):
        _check_services([Stage("x", "python", "m", (), "", ("catalog", "s3"))])  # type: ignore[arg-type]


def test_one_version_rule_the_environment_wins_in_python_and_in_every_script(monkeypatch):
    import subprocess

    from lakehouse import versions as module

    pinned = module.parse_versions(module.VERSIONS_FILE.read_text())["SPARK_VERSION"]
    monkeypatch.setenv("SPARK_VERSION", "9.9.9")
    assert module.versions.__wrapped__()["SPARK_VERSION"] == "9.9.9"
    monkeypatch.setenv("SPARK_VERSION", "")  # empty is unset, as in the scripts
    assert module.versions.__wrapped__()["SPARK_VERSION"] == pinned
    root = module.VERSIONS_FILE.parent
    script = 'source scripts/versions.sh && load_versions SPARK_VERSION && echo "$SPARK_VERSION"'
    run = [["bash", "-c", script], ["bash", "-c", script + " && load_versions NO_SUCH_KEY"]]
    env = {"PATH": "/usr/bin:/bin", "SPARK_VERSION": "9.9.9"}
    ok = subprocess.run(run[0], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert ok.stdout.strip() == "9.9.9"
    bad = subprocess.run(run[1], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "NO_SUCH_KEY missing from" in bad.stderr
    # Every script loads the matrix through that one loader.
    for path in ("scripts/cluster.sh", "scripts/node-image.sh", "images/gobuild.sh",
                 "charts/scripts/chart-tools.sh", "services/services.sh"):  # fmt: skip
        text = (root / path).read_text()
        assert 'source "$ROOT/scripts/versions.sh"' in text, path
        assert 'versions.env"' not in text.replace('"$ROOT/versions.env"', ""), path
