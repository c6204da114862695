"""One data interval through the images, as the cluster runs it: ingest in lakehouse/python,
bronze/silver/gold through the spark image's `driver` command (spark-submit in client mode with
the cluster sparkConf, jars from the image), features and training in lakehouse/python against
the MLflow server image; the tables then read back with independent readers (deltalake,
pyiceberg) in another container. Tests run in file order and build on each other."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from conftest import DAY, PYTHON, SPARK, Platform
from docker_tools import json_lines

from lakehouse.settings import load_settings
from spark_apps.session import spark_conf

pytestmark = pytest.mark.e2e
RUN_ID = "smoke-run-1"
# One data interval: [DAY, next day).
STAGE_ARGS = ["--start", DAY, "--end", "2026-01-06", "--run-id", RUN_ID]


def stage_line(output: str, stage: str) -> dict:
    lines = [line for line in json_lines(output) if line.get("stage") == stage]
    assert len(lines) == 1, f"expected one {stage} result line, got:\n{output[-4000:]}"
    return lines[0]


def python_stage(platform: Platform, module: str) -> dict:
    result = platform.network.run(
        "python", ["python", "-m", module, *STAGE_ARGS], hardening=PYTHON,
        env=platform.stage_env(), timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return stage_line(result.stdout, module.rsplit(".", 1)[-1])


def spark_driver(platform: Platform, module: str) -> dict:
    """The operator's driver contract: `driver` + spark-submit args, the sparkConf the DAGs
    render (spark_conf(cluster=True) of the same settings), the main file inside the image."""
    env = platform.stage_env(SPARK_DRIVER_BIND_ADDRESS="0.0.0.0")
    conf = spark_conf(load_settings(env), cluster=True)
    args = ["driver", "--master", "local[2]", "--conf", "spark.driver.memory=1g"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    args += [f"local:///opt/lakehouse/{module.replace('.', '/')}.py", *STAGE_ARGS]
    result = platform.network.run(
        "spark", args, hardening=SPARK, env={**env, "HOME": "/tmp"}, timeout=900
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return stage_line(result.stdout, module.rsplit(".", 1)[-1])


def read_back(platform: Platform, code: str) -> dict:
    """Run ``code`` (which prints one JSON object) in the python image on the network."""
    result = platform.network.run(
        "python", ["python", "-c", textwrap.dedent(code)], hardening=PYTHON,
        env=platform.stage_env(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ingest_writes_the_day_into_seaweedfs(platform: Platform):
    line = python_stage(platform, "lakehouse.ingest")
    assert line["reconciled"] is True
    listed = read_back(
        platform,
        """
        import json
        from lakehouse.settings import load_settings
        from lakehouse.storage import filesystem
        fs, _ = filesystem(load_settings(), "s3://")
        files = [p for p in fs.find("lakehouse-raw") if p.endswith(".jsonl.gz")]
        print(json.dumps({"objects": len(files)}))
        """,
    )
    assert listed["objects"] > 0


@pytest.mark.parametrize("module", ["spark_apps.bronze", "spark_apps.silver", "spark_apps.gold"])
def test_spark_driver_runs_the_stage_over_s3_and_the_catalog(platform: Platform, module: str):
    line = spark_driver(platform, module)
    assert line["reconciled"] is True
    assert line["day"] == DAY


def test_tables_read_back_with_independent_readers(platform: Platform):
    counts = read_back(
        platform,
        """
        import json
        from lakehouse.settings import load_settings
        from lakehouse.tables import locations
        from ml.lake import catalog, delta_table, table_ident
        s = load_settings()
        t = locations(s)
        def delta_rows(uri):
            return delta_table(s, uri).to_pyarrow_table().num_rows
        gold = catalog(s, t.iceberg_warehouse).load_table(table_ident(t.gold_device_hourly))
        print(json.dumps({
            "bronze": delta_rows(t.bronze_events),
            "silver": delta_rows(t.silver_events),
            "quarantine": delta_rows(t.silver_quarantine),
            "gold_device_hourly": gold.scan().to_arrow().num_rows,
        }))
        """,
    )
    assert counts["silver"] > 0
    assert counts["quarantine"] > 0, "the generator injects bad lines every day"
    assert counts["bronze"] >= counts["silver"] + counts["quarantine"]
    assert counts["gold_device_hourly"] > 0


@pytest.mark.parametrize("module", ["ml.features", "ml.train_anomaly"])
def test_ml_stage_runs_in_the_python_image(platform: Platform, module: str):
    line = python_stage(platform, module)
    assert line["reconciled"] is True


def test_mlflow_server_answers_health_and_holds_the_registered_model(platform: Platform):
    state = read_back(
        platform,
        """
        import json, urllib.request
        health = urllib.request.urlopen("http://mlflow:5000/health", timeout=10).read().decode()
        from mlflow import MlflowClient
        client = MlflowClient()
        versions = client.search_model_versions("name = 'smoke-anomaly'")
        runs = [client.get_run(v.run_id) for v in versions]
        print(json.dumps({"health": health.strip(), "versions": len(versions),
                          "run_status": sorted({r.info.status for r in runs})}))
        """,
    )
    assert state["health"] == "OK"
    assert state["versions"] >= 1
    assert state["run_status"] == ["FINISHED"]


def test_shipped_notebook_executes_headless_in_the_jupyter_image(platform: Platform):
    """The notebook the jupyter image ships, run top to bottom by nbconvert against the
    warehouse the stages above wrote (the pod's settings: S3 and the catalog)."""
    result = platform.network.run(
        "jupyter",
        [
            "jupyter", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.timeout=600", "--stdout",
            "/opt/lakehouse/notebooks/lakehouse.ipynb",
        ],
        hardening=SPARK,
        env=platform.stage_env(HOME="/tmp"),
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    executed = json.loads(result.stdout)
    printed = "".join(
        "".join(output.get("text", ""))
        for cell in executed["cells"]
        for output in cell.get("outputs", [])
    )
    silver_rows = re.search(r"silver rows: (\d+)", printed)
    assert silver_rows, printed[-2000:]
    assert int(silver_rows[1]) > 0
    assert re.search(r"gold site-days: [1-9]", printed), printed[-2000:]
