"""Train the anomaly detector (IsolationForest) on event features, evaluate it against the
generator's ground truth on the interval's hold-out hours, log and register it in MLflow."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from lakehouse.context import StageContext, interval_parser, parse_interval
from lakehouse.tables import locations
from ml import lake, registry
from ml.anomaly import DETECTOR_INPUTS, TRUSTED_TYPES, AnomalyDetector, evaluate
from ml.stage import MLResult, entrypoint
from ml.training import Fitted, holdout_start, log_and_promote, lookback, read_features, skipped

STAGE = "train_anomaly"


def label(features: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """The true anomaly kind of each feature row (NaN: normal)."""
    kinds = truth.drop_duplicates("event_id").set_index("event_id")["kind"]
    return features["event_id"].map(kinds)


def fit(
    train: pd.DataFrame, holdout: pd.DataFrame, params: Mapping[str, Any]
) -> tuple[AnomalyDetector, dict[str, float]]:
    model = AnomalyDetector(**params).fit(train, train["kind"].notna().to_numpy())
    return model, evaluate(holdout["kind"], model.predict(holdout))


def train_day(ctx: StageContext, day: date, params: Mapping[str, Any] | None = None) -> MLResult:
    started = time.monotonic()
    loc = locations(ctx.settings)
    features, version = read_features(ctx, loc.features_events, day, STAGE, key=["event_id"])
    features["event_ts"] = pd.to_datetime(features["event_ts"], utc=True)
    features["kind"] = label(features, lake.read_ground_truth(ctx.settings, lookback(day)))
    cut = holdout_start(day)
    train = features[features["event_ts"] < cut]
    holdout = features[(features["event_ts"] >= cut) & (features["event_date"] == day)]
    if holdout.empty or train["kind"].notna().sum() == 0:
        why = "no hold-out rows" if holdout.empty else "no labelled anomalies before the hold-out"
        return skipped(STAGE, day, ctx, f"{why} ({len(train)} training rows)", started)
    params = {**AnomalyDetector().get_params(), **(params or {})}
    model, metrics = fit(train, holdout, params)
    truth = holdout["kind"]

    def f1_of(other: Any) -> float:
        return evaluate(truth, other.predict(holdout))["f1"]

    fitted = Fitted(
        model=model,
        metrics=metrics | {"threshold": model.threshold_},
        score_name="f1",
        higher_is_better=True,
        evaluate=f1_of,
        example=holdout[list(DETECTOR_INPUTS)].head(5).reset_index(drop=True),
        params=params | {"holdout_start": cut.isoformat(), "train_rows": len(train)},
        counts={
            "train_rows": len(train),
            "holdout_rows": len(holdout),
            "holdout_anomalies": int(np.sum(truth.notna())),
        },
        trusted_types=TRUSTED_TYPES,
    )
    lineage = {
        "features_table": loc.features_events,
        "features_version": version,
        "silver_version": int(features["_source_version"].max()),
    }
    model = registry.anomaly_model(ctx.settings)
    return log_and_promote(ctx, STAGE, day, model, fitted, lineage, started)


def run_interval(ctx: StageContext) -> list[MLResult]:
    return [train_day(ctx, day) for day in ctx.days()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
