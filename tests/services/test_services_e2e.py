"""The whole pipeline through the services profile: raw objects in S3, Delta and Iceberg tables on
s3a://, the Iceberg catalog in PostgreSQL, an MLflow server with artifacts in S3.

Expectations come from the generator's own record of what it delivered and from plain Python over
the raw objects, never from the Spark code under test.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from services_tools import (
    END,
    ROOT,
    SERVICES,
    START,
    Scenario,
    delta_rows,
    iceberg_catalog,
    iceberg_rows,
)

from lakehouse.events import REASON_CODES
from lakehouse.generator import GeneratorConfig, generate_day
from lakehouse.storage import filesystem, list_files, read_bytes
from lakehouse.tables import locations
from ml import registry

DAYS = [START + timedelta(days=i) for i in range((END - START).days)]

CHART_CONFIGMAP_KEYS = {
    "LAKEHOUSE_HOME", "LAKEHOUSE_RAW_URI", "LAKEHOUSE_WAREHOUSE_URI", "LAKEHOUSE_CATALOG_URI",
    "LAKEHOUSE_CATALOG_NAME", "LAKEHOUSE_S3_ENDPOINT", "AWS_REGION", "MLFLOW_TRACKING_URI",
    "LAKEHOUSE_SHUFFLE_PARTITIONS", "LAKEHOUSE_SEED", "LAKEHOUSE_DEVICES", "LAKEHOUSE_SITES",
    "LAKEHOUSE_READING_SECONDS", "LAKEHOUSE_MAX_LATENESS_DAYS",
}  # fmt: skip
CHART_SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "LAKEHOUSE_CATALOG_USER",
    "LAKEHOUSE_CATALOG_PASSWORD", "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD", "AIRFLOW_DB_USER",
    "AIRFLOW_DB_PASSWORD",
}  # fmt: skip
# The Airflow servers' own secrets: in the chart's Secret, but no pipeline stage reads them and
# the services tier runs no Airflow.
AIRFLOW_SERVER_KEYS = {
    "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD",
}  # fmt: skip


@pytest.fixture(scope="module")
def batches(clean: Scenario):
    config = GeneratorConfig.from_settings(clean.settings)
    return {day: generate_day(config, day) for day in DAYS}


@pytest.fixture(scope="module")
def summary(clean: Scenario) -> dict:
    return json.loads(clean.settings.summary_path.read_text())


def totals(summary: dict, stage: str) -> dict[str, int]:
    return summary["totals"][stage]


# ------------------------------------------------------------------------------------ profile


def test_profile_has_exactly_the_chart_keys(profile: dict[str, str]) -> None:
    assert set(profile) == CHART_CONFIGMAP_KEYS | CHART_SECRET_KEYS


def test_profile_matches_the_rendered_chart(profile: dict[str, str]) -> None:
    """Same keys as the chart's ConfigMap + generated Secret, and the same non-address values."""
    sys.path.insert(0, str(ROOT / "tests" / "manifests"))
    try:
        from manifest_tools import Renderer, load_docs, read_versions
    finally:
        sys.path.pop(0)
    helm = ROOT / ".tools" / "bin" / "helm"
    chart = ROOT / "charts" / ".build" / "lakehouse"
    if not helm.exists() or not chart.exists():
        pytest.skip("helm or charts/.build missing: run `make tools-helm chart-deps` first")
    docs = load_docs(
        Renderer(helm=str(helm), kube_version=read_versions()["KUBERNETES_VERSION"]).render()
    )
    (cm,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-settings")
    ]
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert set(cm["data"]) == CHART_CONFIGMAP_KEYS
    assert set(secret["data"]) == CHART_SECRET_KEYS | AIRFLOW_SERVER_KEYS
    same = {"LAKEHOUSE_CATALOG_NAME", "AWS_REGION", "LAKEHOUSE_SEED", "LAKEHOUSE_DEVICES",
            "LAKEHOUSE_SITES", "LAKEHOUSE_READING_SECONDS", "LAKEHOUSE_SHUFFLE_PARTITIONS",
            "LAKEHOUSE_MAX_LATENESS_DAYS",
            "LAKEHOUSE_RAW_URI", "LAKEHOUSE_WAREHOUSE_URI"}  # fmt: skip
    assert {k: profile[k] for k in same} == {k: cm["data"][k] for k in same}
    # Addresses differ only in host and port.
    for key in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_S3_ENDPOINT", "MLFLOW_TRACKING_URI"):
        ours, theirs = (
            urlparse(profile[key].removeprefix("jdbc:")),
            urlparse(cm["data"][key].removeprefix("jdbc:")),
        )
        assert (ours.scheme, ours.path) == (theirs.scheme, theirs.path), key
        assert ours.hostname == "127.0.0.1", key


def test_services_listen_on_loopback_only(profile: dict[str, str]) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed: cannot list listening sockets")
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=False).stdout
    state = Path(profile["LAKEHOUSE_HOME"]).parent
    groups = [p.read_text().strip() for p in state.glob("*.pid")]
    ps = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
    pids = {pid for pid, pgid in (ln.split() for ln in ps.splitlines()) if pgid in groups}
    pg_pid = state / "pg" / "data" / "postmaster.pid"
    if pg_pid.exists():
        pids.add(pg_pid.read_text().splitlines()[0])
    ours = [line for line in out.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert ours, f"no listening socket of pids {pids} in:\n{out}"
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")), line


# ------------------------------------------------------------------------------------ init code


def init_env(profile: dict[str, str]) -> dict[str, str]:
    port = urlparse(profile["LAKEHOUSE_CATALOG_URI"].removeprefix("jdbc:")).port
    return {
        "PATH": "/usr/bin:/bin",
        "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres",
        "PGPASSWORD": profile["POSTGRES_PASSWORD"], "PGDATABASE": "postgres",
        "CATALOG_DB": "iceberg_catalog", "CATALOG_USER": profile["LAKEHOUSE_CATALOG_USER"],
        "CATALOG_PASSWORD": profile["LAKEHOUSE_CATALOG_PASSWORD"],
        "MLFLOW_DB": "mlflow", "MLFLOW_USER": profile["MLFLOW_DB_USER"],
        "MLFLOW_PASSWORD": profile["MLFLOW_DB_PASSWORD"],
        "BUCKETS": "lakehouse-raw lakehouse-warehouse lakehouse-mlflow",
        "LAKEHOUSE_S3_ENDPOINT": profile["LAKEHOUSE_S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": profile["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": profile["AWS_SECRET_ACCESS_KEY"],
        "LAKEHOUSE_INIT_WAIT_SECONDS": "10",
    }  # fmt: skip


def test_bootstrap_is_idempotent_and_roles_log_in(profile: dict[str, str]) -> None:
    import psycopg2

    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "lakehouse.bootstrap", "all"], env=init_env(profile),
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count(": ok") == 3, proc.stdout
    port = urlparse(profile["LAKEHOUSE_CATALOG_URI"].removeprefix("jdbc:")).port
    user, password = profile["LAKEHOUSE_CATALOG_USER"], profile["LAKEHOUSE_CATALOG_PASSWORD"]
    with psycopg2.connect(host="127.0.0.1", port=port, dbname="iceberg_catalog", user=user,
                          password=password) as conn, conn.cursor() as cur:  # fmt: skip
        cur.execute("select current_user, current_database()")
        assert cur.fetchone() == (user, "iceberg_catalog")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", port=port, dbname="iceberg_catalog", user=user,
                         password="wrong")  # fmt: skip


def test_bootstrap_names_an_unreachable_endpoint(profile: dict[str, str]) -> None:
    env = init_env(profile) | {
        "LAKEHOUSE_S3_ENDPOINT": "http://127.0.0.1:9",
        "LAKEHOUSE_INIT_WAIT_SECONDS": "2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse.bootstrap", "buckets"], env=env, cwd=ROOT,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "object store at http://127.0.0.1:9 not ready" in proc.stderr


# ------------------------------------------------------------------------------------ pipeline


def test_counts_reconcile(summary: dict) -> None:
    assert summary["reconciled"] is True
    ingest, bronze = totals(summary, "ingest"), totals(summary, "bronze")
    silver, gold = totals(summary, "silver"), totals(summary, "gold")
    assert ingest["raw_lines"] == bronze["raw_lines"] == bronze["bronze_rows"] > 0
    assert bronze["bronze_rows"] == silver["bronze_rows"]
    assert silver["bronze_rows"] == (
        silver["inserted"]
        + silver["already_present"]
        + silver["duplicates"]
        + silver["quarantined"]
    )
    assert gold["touched_device_hours"] == gold["device_hourly_rows"] > 0
    assert summary["catalog_uri"].startswith("jdbc:postgresql://127.0.0.1:")
    assert all(
        uri.startswith(("s3://", "lakehouse")) or "." in uri for uri in summary["tables"].values()
    )


def test_raw_objects_are_in_s3(clean: Scenario, summary: dict) -> None:
    files = [u for u in list_files(clean.settings, locations(clean.settings).raw_events)
             if u.endswith(".jsonl.gz")]  # fmt: skip
    assert all(u.startswith("s3://lakehouse-raw/") for u in files)
    assert len(files) == totals(summary, "ingest")["raw_files"]
    lines = sum(len(gzip.decompress(read_bytes(clean.settings, u)).splitlines()) for u in files)
    assert lines == totals(summary, "bronze")["bronze_rows"]


def test_tables_are_on_s3_and_the_catalog_in_postgres(clean: Scenario) -> None:
    loc = locations(clean.settings)
    fs, _ = filesystem(clean.settings, "s3://")
    for uri in loc.tables(fmt="delta", writers=("bronze", "silver", "gold", "audit")).values():
        assert uri.startswith("s3://lakehouse-warehouse/")
        assert fs.exists(uri.removeprefix("s3://") + "/_delta_log/00000000000000000000.json"), uri
    catalog = iceberg_catalog(clean.settings)
    for ident in loc.tables(fmt="iceberg", writers=("bronze", "silver", "gold", "audit")).values():
        table = catalog.load_table(".".join(ident.split(".")[1:]))
        assert table.metadata_location.startswith("s3a://lakehouse-warehouse/"), (
            table.metadata_location
        )


def test_deltalake_reads_the_silver_table_spark_wrote(clean: Scenario, batches, summary) -> None:
    rows = delta_rows(clean.settings, locations(clean.settings).silver_events)
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)), "silver holds duplicate event_ids"
    assert set(ids) == {e["event_id"] for b in batches.values() for e in b.valid_events}
    assert len(ids) == totals(summary, "silver")["inserted"]
    quarantine = delta_rows(clean.settings, locations(clean.settings).silver_quarantine)
    assert len(quarantine) == totals(summary, "silver")["quarantined"]


def test_quarantine_holds_every_injected_bad_line_with_its_reason(clean: Scenario, batches) -> None:
    """Read from S3 with deltalake: each reason code counted as often as the generator injected
    its class (blank and invisible keys and 1970 clock resets included)."""
    rows = delta_rows(clean.settings, locations(clean.settings).silver_quarantine)
    found = Counter(reason for r in rows for reason in r["reasons"])
    injected: Counter[str] = Counter()
    for batch in batches.values():
        injected.update({k: v for k, v in batch.injected.items() if k in REASON_CODES})
    assert injected["invalid_key"] > 0
    assert injected["stale_timestamp"] > 0
    assert found == injected


def test_pyiceberg_reads_the_gold_tables_spark_wrote(clean: Scenario, batches) -> None:
    events = {e["event_id"]: e for b in batches.values() for e in b.valid_events}
    expected_hours = Counter()
    for e in events.values():
        ts = datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00"))
        expected_hours[
            (e["device_id"], ts.replace(minute=0, second=0, microsecond=0, tzinfo=None))
        ] += 1
    rows = iceberg_rows(clean.settings, locations(clean.settings).gold_device_hourly)
    actual = {(r["device_id"], r["hour_start"].replace(tzinfo=None)): r["events"] for r in rows}
    assert actual == dict(expected_hours)
    daily = iceberg_rows(clean.settings, locations(clean.settings).gold_site_daily)
    assert sum(r["events"] for r in daily) == len(events)


def test_mlflow_server_tracks_runs_with_artifacts_in_s3(
    profile: dict[str, str], run_tag, tmp_path
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=profile["MLFLOW_TRACKING_URI"])
    experiment = client.create_experiment(f"services-{run_tag}")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "devices", 8)
    client.log_metric(run.info.run_id, "rmse", 0.25)
    (tmp_path / "model.txt").write_text("a tiny model\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "model.txt"))
    client.set_terminated(run.info.run_id)

    got = client.get_run(run.info.run_id)
    assert got.data.params == {"devices": "8"}
    assert got.data.metrics == {"rmse": 0.25}
    back = client.download_artifacts(run.info.run_id, "model.txt", str(tmp_path / "back"))
    assert Path(back).read_text() == "a tiny model\n"
    # The artifact went through the server into the MLflow bucket.
    from lakehouse.settings import load_settings

    settings = load_settings(profile)
    stored = [u for u in list_files(settings, "s3://lakehouse-mlflow") if run.info.run_id in u]
    assert [u.rsplit("/", 1)[1] for u in stored] == ["model.txt"], stored


def test_services_script_refuses_unknown_servers() -> None:
    proc = subprocess.run(["bash", str(SERVICES), "stop", "nosuch"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "unknown server nosuch" in proc.stderr


def test_ml_stages_used_the_mlflow_server_with_artifacts_in_s3(clean: Scenario, summary) -> None:
    from mlflow.tracking import MlflowClient

    notes = [(r["day"], r.get("note")) for r in summary["stages"] if r["stage"] == "train_anomaly"]
    assert totals(summary, "train_anomaly").get("promoted", 0) >= 1, notes
    client = MlflowClient(tracking_uri=clean.settings.mlflow_tracking_uri)
    names = [registry.anomaly_model(clean.settings), registry.forecast_model(clean.settings)]
    champions = [client.get_model_version_by_alias(name, registry.CHAMPION) for name in names]
    assert all(int(v.version) >= 1 for v in champions)
    models = [
        u for u in list_files(clean.settings, "s3://lakehouse-mlflow") if u.endswith("/MLmodel")
    ]
    assert models, "no model artifact in the MLflow bucket"
