"""Data intervals through the lakehouse on a real kind cluster, checked from outside.

Tests run in file order (pytest keeps it): the first run (yesterday, the scheduler's own run)
and its checks, the UIs; then the day before it (`make run DAY=...`: a forecast trains on the
previous day's features, so only now can it have a champion); then yesterday cleared and run
again with the silver driver killed half-way, its tables equal to before the rerun, both models
champions; last `make down`.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from e2e_tools import (
    KUBECONFIG,
    OUT,
    Airflow,
    MLflow,
    Phases,
    Watcher,
    docker,
    kubectl,
    make,
    now,
    say,
)
from table_readers import ML_STAGES, delta_rows, iceberg_rows, normalised

from lakehouse.pipeline import STAGES
from lakehouse.tables import locations

SPARK_STAGES = [s.name for s in STAGES if s.kind == "spark"]
PYTHON_STAGES = [s.name for s in STAGES if s.kind == "python"]
SNAPSHOTS: dict[str, dict[str, list[tuple]]] = {}


def component(seen: Any) -> str:
    return seen.labels.get("app.kubernetes.io/component", "")


def stage_of(seen: Any) -> str:
    """The DAG task a watched object belongs to, from the labels the templates set."""
    comp = component(seen)
    for prefix in ("spark-", "stage-"):
        if comp.startswith(prefix):
            return comp.removeprefix(prefix).replace("-", "_")
    return ""


def all_rows(settings: Any) -> dict[str, list[tuple]]:
    """Every table the pipeline writes, read with deltalake / pyiceberg, lineage columns and
    run-dependent columns aside (normalised), the append-only audit log left out."""
    loc = locations(settings)
    out: dict[str, list[tuple]] = {}
    for name, uri in loc.tables(fmt="delta", writers=(*SPARK_STAGES, *ML_STAGES)).items():
        out[name] = normalised(delta_rows(settings, uri), ())
    for name, ident in loc.tables(fmt="iceberg", writers=SPARK_STAGES).items():
        out[name] = normalised(iceberg_rows(settings, ident), ())
    for name, ident in loc.tables(fmt="iceberg", writers=ML_STAGES).items():
        if iceberg_table_exists(settings, ident):  # forecasts need a previous day
            out[name] = normalised(iceberg_rows(settings, ident), ())
    return out


def iceberg_table_exists(settings: Any, identifier: str) -> bool:
    from table_readers import iceberg_catalog

    return iceberg_catalog(settings).table_exists(".".join(identifier.split(".")[1:]))


def audit(settings: Any, run_id: str) -> dict[str, dict[str, Any]]:
    rows = delta_rows(settings, locations(settings).audit)
    return {r["stage"]: r for r in rows if r["run_id"] == run_id}


# ---------------------------------------------------------------------------------------------
# The first run


def test_dag_run_and_every_task_succeeded(
    first_run: dict[str, Any], airflow: Airflow, phases: Phases
) -> None:
    run = airflow.run(first_run["run_id"])
    tis = airflow.task_instances(first_run["run_id"])
    phases.facts["first_run"] = {
        "run_id": run["dag_run_id"],
        "state": run["state"],
        "seconds": _seconds(run.get("start_date"), run.get("end_date")),
        "tasks": {t["task_id"]: {"state": t["state"], "seconds": t.get("duration"),
                                 "try": t["try_number"]} for t in tis},
    }  # fmt: skip
    assert run["state"] == "success"
    assert {t["task_id"] for t in tis} == {s.name for s in STAGES}
    assert {t["task_id"]: t["state"] for t in tis} == {s.name: "success" for s in STAGES}


def _seconds(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


def test_spark_stages_ran_as_spark_applications_that_completed(
    first_run: dict[str, Any], airflow: Airflow, watcher: Watcher, phases: Phases
) -> None:
    tries = airflow.try_numbers(first_run["run_id"])
    apps = watcher.of("sparkapplication", first_run["since"])
    by_stage: dict[str, list[Any]] = {}
    for app in apps:
        by_stage.setdefault(stage_of(app), []).append(app)
    drivers = {p.name: p for p in watcher.of("pod", first_run["since"])
               if p.labels.get("spark-role") == "driver"}  # fmt: skip
    startup = {}
    for app in apps:
        driver = drivers.get(f"{app.name}-driver")
        if driver is not None and driver.running_at is not None:
            startup[app.name] = round((driver.running_at - app.created).total_seconds(), 1)
    phases.facts["spark_applications"] = {
        a.name: {"states": a.states, "deleted": a.deleted} for a in apps
    }
    phases.facts["spark_application_to_running_driver_seconds"] = startup
    assert sorted(by_stage) == sorted(SPARK_STAGES), [a.name for a in apps]
    for stage, stage_apps in by_stage.items():
        names = [a.name for a in stage_apps]
        assert len(set(names)) == len(names), names  # a new name per try
        # The try that succeeded: its application reached COMPLETED (and was then deleted).
        (last,) = [a for a in stage_apps if a.name.endswith(f"-t{tries[stage]}")]
        assert last.name.startswith(f"lh-{stage}-"), last.name
        assert last.states[-1] == "COMPLETED", f"{last.name} went through {last.states}"
    assert set(startup) == {a.name for a in apps if "RUNNING" in a.states}, startup


def test_python_stages_ran_as_pods_named_per_try(
    first_run: dict[str, Any], airflow: Airflow, watcher: Watcher
) -> None:
    tries = airflow.try_numbers(first_run["run_id"])
    pods = [p for p in watcher.of("pod", first_run["since"]) if component(p).startswith("stage-")]
    assert {stage_of(p) for p in pods} == set(PYTHON_STAGES), [p.name for p in pods]
    assert len({p.name for p in pods}) == len(pods)  # a new name per try
    for stage in PYTHON_STAGES:
        (last,) = [p for p in pods if stage_of(p) == stage and p.name.endswith(f"-t{tries[stage]}")]
        assert "Succeeded" in last.states, f"{last.name}: {last.states}"


def test_tables_reconcile_read_with_independent_readers(
    first_run: dict[str, Any], reader_settings: Any, phases: Phases
) -> None:
    rows = all_rows(reader_settings)
    SNAPSHOTS["first"] = rows
    counts = {name: len(r) for name, r in rows.items()}
    phases.facts["table_rows"] = counts
    run_audit = audit(reader_settings, first_run["run_id"])
    assert set(run_audit) == set(SPARK_STAGES), sorted(run_audit)
    assert all(r["reconciled"] for r in run_audit.values()), run_audit
    bronze, silver, gold = (run_audit[s]["counts"] for s in ("bronze", "silver", "gold"))
    bronze, silver, gold = dict(bronze), dict(silver), dict(gold)
    # A fresh cluster: this run wrote every row there is.
    assert counts["bronze.iot_events"] == bronze["bronze_rows"] == bronze["raw_lines"] > 0
    assert silver["bronze_rows"] == bronze["bronze_rows"]
    assert counts["silver.iot_events"] == silver["inserted"] > 0
    assert counts["silver.quarantine"] > 0
    assert counts["gold.device_hourly"] == gold["device_hourly_rows"] > 0
    assert counts["gold.site_daily"] == gold["site_daily_rows"] > 0
    assert counts["gold.anomaly_scores"] > 0
    # A first day has no previous day to forecast from: train_forecast skips, score says so.
    assert "gold.device_hourly_forecast" not in rows


def champion_tags(mlflow: MLflow, model: str) -> dict[str, str]:
    version = mlflow.get("/registered-models/alias", name=model, alias="champion")
    run = mlflow.get("/runs/get", run_id=version["model_version"]["run_id"])["run"]
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_mlflow_has_the_anomaly_champion_with_lineage(
    first_run: dict[str, Any], mlflow: MLflow, reader_settings: Any, day: date
) -> None:
    tags = champion_tags(mlflow, f"{reader_settings.mlflow_prefix}-anomaly")
    assert tags["lakehouse.run_id"] == first_run["run_id"], tags
    assert tags["interval.start"] == day.isoformat(), tags
    assert tags["lineage.features_table"].startswith("s3://"), tags
    assert int(tags["lineage.silver_version"]) >= 0, tags


def test_task_logs_are_read_back_after_the_pods_are_gone(
    first_run: dict[str, Any], airflow: Airflow
) -> None:
    run_id = first_run["run_id"]
    left = kubectl("get", "pods", "-l", "app.kubernetes.io/managed-by=airflow", "-o", "name")
    assert left.strip() == "", f"stage pods left after a green run: {left}"
    tries = airflow.try_numbers(run_id)
    for stage in (s.name for s in STAGES):
        text = airflow.log_text(run_id, stage, tries[stage])
        # The stage's own JSON line: in the log only if the pod's (or driver's) output was kept.
        assert f'"stage": "{stage}"' in text, (stage, text[-1500:])
        assert run_id in text, (stage, text[-1500:])


# ---------------------------------------------------------------------------------------------
# The UIs, in headless Chromium; a screenshot each under .cluster/e2e/


def new_page(browser: Any) -> Any:
    return browser.new_page(viewport={"width": 1400, "height": 900})


def page_showing(page: Any, url: str, text: str, shot: str, *, exact: bool = False) -> str:
    """Open ``url``, wait until ``text`` is on the page, screenshot it; the page's HTML."""
    page.goto(url, wait_until="networkidle")
    page.get_by_text(text, exact=exact).first.wait_for(timeout=60_000)
    page.screenshot(path=str(OUT / f"ui-{shot}.png"), full_page=True)
    return page.content()


def test_airflow_ui_login_then_the_dag_grid(
    first_run: dict[str, Any], browser: Any, airflow: Airflow, credentials: dict[str, str]
) -> None:
    page = new_page(browser)
    page.goto(airflow.base + "/", wait_until="networkidle")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", credentials["AIRFLOW_ADMIN_PASSWORD"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
    url = airflow.base + "/dags/lakehouse_end_to_end"
    assert "lakehouse_end_to_end" in page_showing(page, url, "silver", "airflow-grid", exact=True)


def test_mlflow_ui_lists_the_registered_models(
    first_run: dict[str, Any], browser: Any, mlflow: MLflow, reader_settings: Any
) -> None:
    model = f"{reader_settings.mlflow_prefix}-anomaly"
    html = page_showing(new_page(browser), mlflow.base + "/#/models", model, "mlflow-models")
    assert model in html


def test_object_store_browser_shows_the_buckets(
    first_run: dict[str, Any], browser: Any, filer_url: str, reader_settings: Any
) -> None:
    bucket = reader_settings.warehouse_uri.removeprefix("s3://").split("/")[0]
    html = page_showing(new_page(browser), filer_url + "/buckets/", bucket, "object-store-buckets")
    assert bucket in html


# ---------------------------------------------------------------------------------------------
# The interval again, with a fault: the silver driver killed while it runs


def test_the_day_before_runs_green_too(
    history_run: dict[str, Any], airflow: Airflow, reader_settings: Any, phases: Phases
) -> None:
    tis = airflow.task_instances(history_run["run_id"])
    phases.facts["history_run"] = {
        "run_id": history_run["run_id"],
        "tasks": {t["task_id"]: {"state": t["state"], "seconds": t.get("duration")} for t in tis},
    }
    assert {t["task_id"]: t["state"] for t in tis} == {s.name: "success" for s in STAGES}
    SNAPSHOTS["history"] = all_rows(reader_settings)


def test_rerun_with_the_silver_driver_killed_ends_green_with_identical_tables(
    first_run: dict[str, Any],
    history_run: dict[str, Any],
    airflow: Airflow,
    watcher: Watcher,
    reader_settings: Any,
    phases: Phases,
) -> None:
    run_id = first_run["run_id"]
    before = airflow.try_numbers(run_id)
    cleared_at = now()
    with phases.phase("rerun: clear the interval, kill the silver driver, follow to the end"):
        airflow.post(
            "/dags/lakehouse_end_to_end/clearTaskInstances",
            {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True},
        )
        killed: dict[str, Any] = {}

        def kill_silver_driver() -> None:
            if killed:
                return
            for pod in watcher.of("pod", cleared_at):
                if (pod.labels.get("spark-role") == "driver" and stage_of(pod) == "silver"
                        and pod.running_at is not None):  # fmt: skip
                    # Half-way: the session is up and the MERGE under way (about 30 s in).
                    if (now() - pod.running_at).total_seconds() < 30:
                        return
                    say(f"deleting the running silver driver {pod.name}")
                    kubectl("delete", "pod", pod.name, "--wait=false")
                    killed.update(pod=pod.name, at=now().isoformat())
                    return

        state = airflow.wait_finished(run_id, timeout=5400, on_poll=kill_silver_driver)
    phases.facts["fault"] = killed
    assert killed, "the silver driver was never seen running after the clear"
    assert state == "success"
    tries = airflow.tries(run_id, "silver")
    after = airflow.try_numbers(run_id)
    # The clear is one new try per task; the kill costs silver one more (Airflow's retry).
    assert after["silver"] >= before["silver"] + 2, (before, after)
    assert any(t["state"] == "failed" for t in tries), [
        (t["try_number"], t["state"]) for t in tries
    ]
    phases.facts["rerun"] = {"tries": after}
    rows = all_rows(reader_settings)
    SNAPSHOTS["rerun"] = rows
    phases.facts["table_rows_after_rerun"] = {name: len(r) for name, r in rows.items()}
    clean = SNAPSHOTS["history"]
    for name in locations(reader_settings).tables(writers=SPARK_STAGES):
        assert rows[name] == clean[name], f"{name} differs after the rerun"
    # The ML tables are recomputed, not replayed: the day before is there now, so the
    # interval's features gain their lags (and record the silver version read), and scores
    # carry the model version the day before may have promoted. Same rows, counted.
    for name in ("features.events", "features.device_hourly", "gold.anomaly_scores"):
        assert len(rows[name]) == len(clean[name]), f"{name}: row count differs after the rerun"
    # Now with the previous day there: forecasts for the interval.
    assert len(rows.get("gold.device_hourly_forecast", [])) > 0, sorted(rows)


def test_mlflow_has_both_champions_with_lineage(
    first_run: dict[str, Any], history_run: dict[str, Any], mlflow: MLflow, reader_settings: Any
) -> None:
    ours = {first_run["run_id"], history_run["run_id"]}
    for kind in ("anomaly", "forecast"):
        tags = champion_tags(mlflow, f"{reader_settings.mlflow_prefix}-{kind}")
        assert tags["lakehouse.run_id"] in ours, (kind, tags)
        assert tags["lineage.features_table"].startswith("s3://"), (kind, tags)
        assert int(tags["lineage.features_version"]) >= 0, (kind, tags)


# ---------------------------------------------------------------------------------------------
# The end


@pytest.mark.skipif(
    os.environ.get("E2E_KEEP") == "1",
    reason="E2E_KEEP=1: the cluster is kept for inspection (`make down` removes it)",
)
def test_make_down_leaves_nothing_behind(cluster: Path, phases: Phases) -> None:
    with phases.phase("make down"):
        make("down", cluster / "down.log", timeout=600)

    assert docker("ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster").strip() == ""
    assert docker("volume", "ls", "-q", "--filter", "label=io.x-k8s.kind.cluster").strip() == ""
    networks = docker("network", "ls", "--format", "{{.Name}}").split()
    assert "kind" not in networks, networks
    assert not KUBECONFIG.exists()
