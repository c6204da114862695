"""Unit tests of the ML path's pure functions: tiny inline data, expectations worked out by
hand or from the synthetic signal's known parameters."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from lakehouse.context import StageContext
from ml.anomaly import (
    MIN_ROWS_PER_SCORING_THREAD,
    AnomalyDetector,
    best_f1_threshold,
    evaluate,
    scoring_blocks,
)
from ml.event_features import device_event_features
from ml.fitting import noise_scale, robust_harmonic_fit, run_lengths
from ml.forecast import forecast_metrics, usable
from ml.hourly_features import hourly_features
from ml.lake import parse_ground_truth, sqlalchemy_uri
from ml.registry import decide
from ml.report import png_base64, render_html, sample_devices
from ml.training import read_features

DAY = date(2026, 1, 5)


def test_sqlalchemy_uri_for_the_jdbc_catalogs():
    assert sqlalchemy_uri("jdbc:sqlite:/tmp/x/catalog.db") == "sqlite:////tmp/x/catalog.db"
    assert (
        sqlalchemy_uri("jdbc:postgresql://db:5432/iceberg", "lake", "p@ss/word")
        == "postgresql+psycopg2://lake:p%40ss%2Fword@db:5432/iceberg"
    )
    assert (
        sqlalchemy_uri("jdbc:postgresql://db/iceberg?user=u&password=pw&sslmode=require")
        == "postgresql+psycopg2://u:pw@db/iceberg?sslmode=require"
    )
    with pytest.raises(ValueError, match="LAKEHOUSE_CATALOG_URI"):
        sqlalchemy_uri("jdbc:mysql://db/iceberg")


def test_run_lengths():
    length, position = run_lengths(np.array([1.0, 1.0, 2.0, 2.0, 2.0, 3.0]))
    assert length.tolist() == [2, 2, 3, 3, 3, 1]
    assert position.tolist() == [1, 2, 1, 2, 3, 1]


def test_robust_fit_recovers_the_daily_cycle_despite_outliers():
    seconds = np.arange(0, 86_400, 300, dtype=float)
    truth = 20 + 3 * np.cos(2 * np.pi * (seconds - 54_000) / 86_400)
    values = truth.copy()
    values[100:110] += 50.0  # a block of gross outliers
    fitted = robust_harmonic_fit(seconds, values)
    assert np.abs(fitted - truth).max() < 0.05


def test_noise_scale_ignores_the_daily_cycle():
    rng = np.random.default_rng(1)
    seconds = np.arange(0, 86_400, 60, dtype=float)
    values = 600 + 150 * np.cos(2 * np.pi * seconds / 86_400) + rng.normal(0, 12, len(seconds))
    assert noise_scale(values) == pytest.approx(12, rel=0.1)


def _device(values: np.ndarray, step: int = 300) -> pd.DataFrame:
    ts = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.arange(len(values)) * step, unit="s")
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(values))],
            "device_id": "dev-0000",
            "site_id": "site-00",
            "sensor_type": "temperature",
            "event_ts": ts,
            "event_date": DAY,
            "value": values,
        }
    )


def test_event_features_expose_spikes_and_frozen_values():
    rng = np.random.default_rng(7)
    values = np.round(21 + rng.normal(0, 0.25, 288), 2)
    values[50] += 2.0  # an 8-sigma spike
    values[200:210] = values[199]  # frozen for 10 readings after its anchor
    feats = device_event_features(_device(values)).reset_index(drop=True)
    assert feats.loc[50, "local_z"] > 5
    assert (feats["local_z"].drop(index=50).abs() < 5).all()
    assert feats.loc[199, "stuck_length"] == 1  # the anchor itself is a normal reading
    assert (feats.loc[200:209, "stuck_length"] == 11).all()
    assert feats.loc[0, "hour_of_day"] == 0
    assert feats.loc[12, "hour_of_day"] == 1


def test_hourly_features_need_the_previous_day():
    hours = pd.date_range(pd.Timestamp(DAY, tz="UTC") - pd.Timedelta(days=1), periods=48, freq="h")
    index = np.arange(48) + 0.5
    means = 100 + 10 * np.cos(2 * np.pi * (index + 9) / 24)  # a pure daily cycle
    seen = pd.DataFrame(
        {
            "device_id": "dev-0001",
            "site_id": "site-00",
            "sensor_type": "co2",
            "hour_start": hours,
            "mean_value": means,
            "stddev_value": 2.0,
        }
    )
    new = seen[seen["hour_start"] >= pd.Timestamp(DAY, tz="UTC")].assign(device_id="dev-0002")
    feats = hourly_features(pd.concat([seen, new]), DAY)
    old = feats[feats["device_id"] == "dev-0001"].reset_index(drop=True)
    assert len(old) == 24
    assert np.allclose(old["profile"], means[24:], atol=1e-6)  # the cycle, one day ahead
    assert np.allclose(old["lag_24"], means[:24])
    assert np.allclose(old["actual"], means[24:])
    assert usable(old).all()
    fresh = feats[feats["device_id"] == "dev-0002"].reset_index(drop=True)
    # A device first seen today has no history to forecast from until 18 hours have passed.
    assert usable(fresh).tolist() == [False] * 18 + [True] * 6


def test_evaluate_by_hand():
    kinds = pd.Series([None, None, None, "spike", "spike", "drift", "stuck", None])
    predicted = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    m = evaluate(kinds, predicted)
    # 3 of 4 anomalies found, 1 false alarm among 4 normal readings
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["recall_spike"] == pytest.approx(1 / 2)
    assert m["precision_spike"] == pytest.approx(1 / 2)  # 1 spike found vs 1 false alarm
    assert m["f1_drift"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert m["false_alarms"] == 1


def test_best_f1_threshold_separates_clean_scores():
    labels = np.array([0, 0, 0, 1, 1])
    assert best_f1_threshold(labels, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no labelled anomalies"):
        best_f1_threshold(np.zeros(3, bool), np.array([0.1, 0.2, 0.3]))


def test_detector_flags_obvious_outliers():
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame(
        {
            "resid_z": rng.normal(0, 1, n),
            "local_z": rng.normal(0, 1, n),
            "level_z": rng.normal(0, 0.1, n),
            "level_trailing_z": rng.normal(0, 0.1, n),
            "level_leading_z": rng.normal(0, 0.1, n),
            "stuck_length": np.ones(n, dtype=int),
        }
    )
    frame.loc[:19, "local_z"] = 12.0
    labels = np.zeros(n, bool)
    labels[:20] = True
    model = AnomalyDetector(n_estimators=50, max_samples=256).fit(frame, labels)
    assert model.predict(frame)[:20].all()
    assert model.predict(frame)[20:].mean() < 0.01


def test_scoring_blocks_cover_every_row_once_and_are_never_tiny():
    rows = 3 * MIN_ROWS_PER_SCORING_THREAD + 7
    assert scoring_blocks(rows, cpus=1) == [slice(0, rows)]
    assert scoring_blocks(MIN_ROWS_PER_SCORING_THREAD - 1, cpus=8) == [
        slice(0, MIN_ROWS_PER_SCORING_THREAD - 1)
    ]
    assert scoring_blocks(0, cpus=4) == [slice(0, 0)]
    blocks = scoring_blocks(rows, cpus=8)
    assert len(blocks) == 3
    assert blocks[0].start == 0
    assert blocks[-1].stop == rows
    assert all(a.stop == b.start for a, b in pairwise(blocks))
    assert min(b.stop - b.start for b in blocks) >= MIN_ROWS_PER_SCORING_THREAD


def test_threaded_scores_equal_a_single_threaded_run_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(3)
    n = 2 * MIN_ROWS_PER_SCORING_THREAD + 123
    frame = pd.DataFrame(
        {name: rng.normal(0, 1, n) for name in ("resid_z", "local_z", "level_z")}
        | {"level_trailing_z": rng.normal(0, 1, n), "level_leading_z": rng.normal(0, 1, n)}
        | {"stuck_length": rng.integers(1, 5, n)}
    )
    labels = np.abs(frame["local_z"].to_numpy()) > 3
    model = AnomalyDetector(n_estimators=20, max_samples=256).fit(frame, labels)
    monkeypatch.setattr("ml.anomaly.joblib.effective_n_jobs", lambda n_jobs: 2)
    threaded = model.anomaly_score(frame)
    monkeypatch.setattr("ml.anomaly.joblib.effective_n_jobs", lambda n_jobs: 1)
    single = model.anomaly_score(frame)
    assert np.array_equal(threaded, single)
    assert np.array_equal(model.predict(frame), model.flags(single))


def test_forecast_metrics_by_hand():
    m = forecast_metrics(
        actual=np.array([10.0, 20.0]),
        predicted=np.array([11.0, 18.0]),
        naive=np.array([14.0, 24.0]),
        scale=np.array([1.0, 2.0]),
    )
    assert m["mae"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(np.sqrt(2.5))
    assert m["mape"] == pytest.approx(10.0)
    assert m["naive_mae"] == pytest.approx(4.0)
    assert m["mae_ratio"] == pytest.approx(1.5 / 4.0)
    assert m["scaled_mae_ratio"] == pytest.approx(1.0 / 3.0)


def test_champion_moves_only_on_strict_improvement():
    assert decide(0.8, None, higher_is_better=True)
    assert decide(0.81, 0.80, higher_is_better=True)
    assert not decide(0.80, 0.80, higher_is_better=True)
    assert not decide(0.79, 0.80, higher_is_better=True)
    assert decide(1.0, 1.2, higher_is_better=False)
    assert not decide(1.2, 1.2, higher_is_better=False)


def test_ground_truth_lines_parse():
    frame = parse_ground_truth(
        ['{"event_id": "a", "device_id": "d", "event_ts": "t", "kind": "spike"}', ""]
    )
    assert frame.to_dict("records") == [
        {"event_id": "a", "device_id": "d", "event_ts": "t", "kind": "spike"}
    ]


def test_report_html_embeds_png_images():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    encoded = png_base64(fig)
    assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"
    page = render_html("T <1>", [("Plot", f"<img src='data:image/png;base64,{encoded}'>")])
    assert page.startswith("<!doctype html>")
    assert "<h1>T &lt;1&gt;</h1>" in page
    assert "data:image/png;base64," in page


def test_sample_devices_prefer_those_with_labels():
    truth = pd.DataFrame({"device_id": ["b", "b", "c"]})
    assert sample_devices(truth, ["a", "b", "c", "d"], n=3) == ["b", "c", "a"]


def test_features_reach_the_trainer_in_key_order_whatever_the_files_hold(settings, tmp_path):
    from deltalake import write_deltalake

    day = date(2026, 1, 6)
    uri = str(tmp_path / "features")
    # Two commits whose rows are out of key order within and across files, as Spark's
    # unordered writes leave them.
    for ids in (["e9", "e3", "e7"], ["e5", "e1"]):
        frame = pd.DataFrame({"event_id": ids, "event_date": [day] * len(ids)})
        write_deltalake(uri, frame, partition_by=["event_date"], mode="append")
    ctx = StageContext(settings, day, day + timedelta(days=1), "test-order")
    features, version = read_features(ctx, uri, day, "train_anomaly", key=["event_id"])
    assert features["event_id"].tolist() == ["e1", "e3", "e5", "e7", "e9"]
    assert list(features.index) == [0, 1, 2, 3, 4]
    assert version == 1
