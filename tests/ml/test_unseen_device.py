"""A device the models never saw in training (new to the fleet on the scored day): the anomaly
scorer gives every one of its readings a score, the forecaster forecasts it as soon as it has a
profile's worth of its own history, and the hours before that are named, not dropped silently.

Pure: a synthetic silver slice built inline (daily cycle + noise, known spikes), features and
models from the ML code, no stores."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.anomaly import AnomalyDetector
from ml.event_features import MIN_READINGS, event_features, too_few_readings
from ml.forecast import Forecaster, usable
from ml.hourly_features import hourly_features
from ml.score import anomaly_rows, forecast_rows, history_note, without_history

FIRST = date(2026, 1, 3)
TRAIN_DAY = FIRST + timedelta(days=1)
SCORE_DAY = FIRST + timedelta(days=2)
STEP = 300  # seconds between readings
KNOWN = ["dev-01", "dev-02", "dev-03", "dev-04"]
NEW = "dev-99"
NEW_SPIKE = 150  # index of the new device's spiked reading on the scored day


def readings(device: str, days: list[date], level: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(days[0], tz="UTC")
    ts = pd.date_range(start, periods=len(days) * 86_400 // STEP, freq=f"{STEP}s")
    seconds = (ts - start).total_seconds().to_numpy()
    value = level + 3 * np.cos(2 * np.pi * (seconds - 54_000) / 86_400)
    value = value + rng.normal(0, 0.1, len(ts))
    return pd.DataFrame(
        {
            "event_id": [f"{device}-{i}" for i in range(len(ts))],
            "device_id": device,
            "site_id": "site-1",
            "sensor_type": "temperature",
            "event_ts": ts,
            "event_date": ts.date,
            "value": value,
        }
    )


@pytest.fixture(scope="module")
def silver() -> tuple[pd.DataFrame, set[str]]:
    """Three days of the known devices, the scored day only of the new one; 2.5 (25 noise
    sigma) added to every 40th reading of the known devices and to one of the new device."""
    known = [
        readings(d, [FIRST, TRAIN_DAY, SCORE_DAY], 20 + i, seed=i) for i, d in enumerate(KNOWN)
    ]
    frame = pd.concat([*known, readings(NEW, [SCORE_DAY], 25, seed=99)], ignore_index=True)
    spiked = frame.groupby("device_id").cumcount() % 40 == 17
    spiked &= frame["device_id"] != NEW
    new_rows = frame.index[frame["device_id"] == NEW]
    spiked[new_rows[NEW_SPIKE]] = True
    frame.loc[spiked, "value"] += 2.5
    return frame, set(frame.loc[spiked, "event_id"])


def gold_hours(silver: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    """What gold.device_hourly holds for these days (mean and spread per device-hour)."""
    rows = silver[silver["event_date"].isin(days)]
    rows = rows.assign(hour_start=rows["event_ts"].dt.floor("h"))
    keys = ["device_id", "site_id", "sensor_type", "hour_start"]
    out = rows.groupby(keys, as_index=False)["value"].agg(mean_value="mean", stddev_value="std")
    return out.assign(event_date=out["hour_start"].dt.date)


def test_the_anomaly_scorer_scores_every_reading_of_an_unseen_device(silver):
    frame, spikes = silver
    train = event_features(frame, TRAIN_DAY)
    assert NEW not in set(train["device_id"])  # the model never sees it
    model = AnomalyDetector(n_estimators=50, max_samples=256).fit(
        train, train["event_id"].isin(spikes).to_numpy()
    )

    features = event_features(frame, SCORE_DAY)
    rows = anomaly_rows(features, model, "7", "run-1")

    new = rows[rows["device_id"] == NEW]
    assert len(new) == 86_400 // STEP  # every reading of its first day
    assert np.isfinite(new["anomaly_score"]).all()
    spike_id = f"{NEW}-{NEW_SPIKE}"
    assert new.loc[new["anomaly_score"].idxmax(), "event_id"] == spike_id
    assert new.loc[new["is_anomaly"], "event_id"].tolist() == [spike_id]
    assert set(rows["device_id"]) == {*KNOWN, NEW}


def test_an_unseen_device_is_forecast_once_it_has_history_and_named_until_then(silver):
    frame, _ = silver
    train = hourly_features(gold_hours(frame, [FIRST, TRAIN_DAY]), TRAIN_DAY)
    train = train[usable(train)]
    assert set(train["device_id"]) == set(KNOWN)
    model = Forecaster(n_estimators=30, min_child_samples=5).fit(train, train["actual"])

    features = hourly_features(gold_hours(frame, [TRAIN_DAY, SCORE_DAY]), SCORE_DAY)
    rows = forecast_rows(features, model, "3", "run-1")

    new = rows[rows["device_id"] == NEW]
    # Online from 00:00: 18 of the trailing 24 hours are its own from 18:00 on.
    assert new["hour_start"].dt.hour.tolist() == [18, 19, 20, 21, 22, 23]
    assert (new["forecast"] - new["actual"]).abs().max() < 0.5  # cycle amplitude is 3
    assert len(rows[rows["device_id"].isin(KNOWN)]) == len(KNOWN) * 24
    assert without_history(features) == {NEW: 18}
    assert history_note(without_history(features)) == (
        "not forecast, under 18 h of history: dev-99 (18 h)"
    )


def test_the_note_stays_short_for_a_whole_new_fleet():
    missing = {f"dev-{i:02d}": 24 for i in range(8)}
    assert history_note(missing) == (
        "not forecast, under 18 h of history: dev-00 (24 h), dev-01 (24 h), dev-02 (24 h), "
        "dev-03 (24 h), dev-04 (24 h) and 3 more devices"
    )
    assert history_note({}) == ""


def test_a_device_online_for_minutes_is_named_not_dropped(silver):
    """Five readings (25 minutes) are too few for a baseline: no features yet, and the stage
    says which device and how many readings, instead of leaving them out silently."""
    frame, _ = silver
    late = readings("dev-77", [SCORE_DAY], 22, seed=77).tail(5)
    with_late = pd.concat([frame, late], ignore_index=True)
    assert MIN_READINGS > 5
    assert "dev-77" not in set(event_features(with_late, SCORE_DAY)["device_id"])
    assert too_few_readings(with_late, SCORE_DAY) == {"dev-77": 5}
    # Devices with enough readings, new or not, are not listed; nor is a day it had none.
    assert too_few_readings(frame, SCORE_DAY) == {}
    assert too_few_readings(with_late, TRAIN_DAY) == {}
