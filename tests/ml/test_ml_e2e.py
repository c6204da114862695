"""The ML stages end to end on the shared small data set (8 devices, 300 s readings, 2 days):
real Delta, Iceberg (SQLite JDBC catalog read by pyiceberg) and a real local MLflow store.

Expectations come from the stores themselves (MLflow runs, Delta history, Iceberg snapshots)
and from the generator's ground truth, never from the ML code under test.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from lakehouse.context import StageContext, StageInputError
from lakehouse.tables import locations
from ml import lake, registry, score, train_anomaly
from ml.features import build_day

pytestmark = pytest.mark.e2e

START = date(2026, 1, 5)
END = date(2026, 1, 7)
LAST = END - timedelta(days=1)


@pytest.fixture(scope="module")
def pipeline(pipeline_run):
    return pipeline_run


@pytest.fixture(scope="module")
def client(settings, pipeline):
    return registry.client(settings)


def ctx_for(settings, day: date) -> StageContext:
    return StageContext(settings, day, day + timedelta(days=1), "test-ml")


def runs_of(client, name: str) -> list:
    exp = client.get_experiment_by_name(name)
    assert exp is not None, f"no MLflow experiment {name}"
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_summary_has_ml_metrics_and_the_report(settings, pipeline):
    _, summary = pipeline
    written = json.loads(settings.summary_path.read_text())
    assert written["report"] == summary["report"]
    assert written["ml"]["train_anomaly"]["metrics"]["f1"] > 0
    assert "mae_ratio" in written["ml"]["train_forecast"]["metrics"]
    page = Path(written["report"]).read_text()
    assert written["report"].startswith(locations(settings).reports)
    assert page.count("data:image/png;base64,") >= 5
    for heading in ("Events per hour", "Quarantine reasons", "Detected vs true", "Forecast vs"):
        assert heading in page


def test_training_runs_have_metrics_and_lineage(settings, client, pipeline):
    loc = locations(settings)
    anomaly = runs_of(client, registry.anomaly_model(settings))
    assert {r.data.tags["interval.start"] for r in anomaly} >= {START.isoformat(), LAST.isoformat()}
    features_history = {
        h["version"] for h in lake.delta_table(settings, loc.features_events).history()
    }
    silver_history = {h["version"] for h in lake.delta_table(settings, loc.silver_events).history()}
    for run in anomaly:
        for key in ("f1", "precision", "recall", "f1_spike", "f1_drift", "f1_stuck"):
            assert key in run.data.metrics, key
        assert int(run.data.tags["lineage.features_version"]) in features_history
        assert int(run.data.tags["lineage.silver_version"]) in silver_history

    forecast = runs_of(client, registry.forecast_model(settings))
    assert [r.data.tags["interval.start"] for r in forecast] == [LAST.isoformat()]
    gold = lake.catalog(settings, loc.iceberg_warehouse).load_table(
        lake.table_ident(loc.gold_device_hourly)
    )
    snapshots = {s.snapshot_id for s in gold.snapshots()}
    for run in forecast:
        for key in ("mae", "rmse", "mape", "naive_mae", "mae_ratio"):
            assert key in run.data.metrics, key
        assert int(run.data.tags["lineage.gold_snapshot_id"]) in snapshots


def test_models_are_registered_with_a_champion_and_a_signature(settings, client, pipeline):
    import mlflow.models

    for name in (registry.anomaly_model(settings), registry.forecast_model(settings)):
        champion = client.get_model_version_by_alias(name, registry.CHAMPION)
        info = mlflow.models.get_model_info(f"models:/{name}@{registry.CHAMPION}")
        assert info.signature is not None
        assert champion.run_id


def test_quality_stays_above_a_floor(pipeline):
    report, _ = pipeline
    trained = {(r.stage, r.day): r for r in report.results if r.stage.startswith("train_")}
    # Well below what this small data set gives (F1 ~0.75-0.8, MAE ratio ~0.8).
    assert trained[("train_anomaly", LAST)].metrics["f1"] >= 0.4
    assert trained[("train_anomaly", LAST)].metrics["recall_stuck"] >= 0.5
    assert trained[("train_forecast", LAST)].metrics["mae_ratio"] <= 1.1


def test_a_worse_model_does_not_take_the_alias(settings, client, pipeline):
    model = registry.anomaly_model(settings)
    before = client.get_model_version_by_alias(model, registry.CHAMPION).version
    worse = train_anomaly.train_day(
        ctx_for(settings, LAST), LAST, params={"n_estimators": 1, "max_samples": 8}
    )
    run = client.get_run(worse.artifacts["mlflow_run_id"])
    assert run.data.metrics["f1"] < run.data.metrics["champion_f1"]  # it really is worse
    assert worse.counts["promoted"] == 0
    assert worse.versions["model_version"] > int(before)  # registered all the same
    after = client.get_model_version_by_alias(model, registry.CHAMPION).version
    assert after == before
    assert run.data.tags["champion.promoted"] == "False"


def test_scoring_writes_the_interval_once(settings, pipeline):
    loc = locations(settings)
    features, _ = lake.read_delta(
        settings, loc.features_events, partition="event_date", values=[LAST]
    )

    def rows(table: str):
        from pyiceberg.expressions import EqualTo

        frame, _ = lake.read_iceberg(
            settings, loc.iceberg_warehouse, table, EqualTo("event_date", LAST.isoformat())
        )
        return frame

    first = rows(loc.gold_anomaly_scores)
    assert sorted(first["event_id"]) == sorted(features["event_id"])
    forecasts = rows(loc.gold_forecasts)
    assert len(forecasts) == settings.devices * 24
    score.score_day(ctx_for(settings, LAST), LAST)
    again = rows(loc.gold_anomaly_scores)
    assert len(again) == len(first)
    assert again["event_id"].is_unique
    assert len(rows(loc.gold_forecasts)) == len(forecasts)


def test_late_events_are_scored_on_the_day_they_arrive(settings, pipeline):
    """Events of START ingested on LAST were never in START's own score pass: LAST's pass
    must score their date again, so every featured event of START has a score."""
    from pyiceberg.expressions import EqualTo

    loc = locations(settings)
    silver, _ = lake.read_delta(
        settings, loc.silver_events, partition="event_date", values=[START],
        columns=["event_id", "ingest_date"],
    )  # fmt: skip
    late = set(silver.loc[silver["ingest_date"] == LAST, "event_id"])
    featured, _ = lake.read_delta(
        settings, loc.features_events, partition="event_date", values=[START]
    )
    scores, _ = lake.read_iceberg(
        settings, loc.iceberg_warehouse, loc.gold_anomaly_scores,
        EqualTo("event_date", START.isoformat()),
    )  # fmt: skip
    assert late & set(featured["event_id"]), "the data set should have featured late events"
    assert sorted(scores["event_id"]) == sorted(featured["event_id"])


def test_an_interval_without_data_fails_with_a_clear_message(settings, pipeline):
    empty = date(2030, 1, 1)
    with pytest.raises(StageInputError, match="silver has no rows ingested on 2030-01-01"):
        build_day(ctx_for(settings, empty), empty)
    with pytest.raises(StageInputError, match="no feature rows for 2030-01-01"):
        train_anomaly.train_day(ctx_for(settings, empty), empty)


def test_entrypoint_reports_missing_input_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    assert train_anomaly.main(["--start", "2026-01-05"]) == 1
    err = capsys.readouterr().err
    assert "train_anomaly failed: train_anomaly 2026-01-05: no feature table at" in err
    assert "Traceback" not in err
