"""Train the next-hour forecaster (LightGBM) on device-hour features, compare it with the
seasonal-naive baseline on the interval's hold-out hours, log and register it in MLflow."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from lakehouse.context import StageContext, interval_parser, parse_interval
from lakehouse.tables import locations
from ml import registry
from ml.forecast import (
    FORECAST_INPUTS,
    TRUSTED_TYPES,
    Forecaster,
    forecast_metrics,
    usable,
)
from ml.stage import MLResult, entrypoint
from ml.training import Fitted, holdout_start, log_and_promote, read_features, skipped

STAGE = "train_forecast"
MIN_TRAIN_ROWS = 24


def split(features: pd.DataFrame, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows (before the hold-out, with history and a target) and hold-out rows (the
    interval's last hours, with history, a target and a seasonal-naive value)."""
    rows = features[usable(features) & features["actual"].notna()]
    cut = holdout_start(day)
    train = rows[rows["hour_start"] < cut]
    holdout = rows[(rows["hour_start"] >= cut) & rows["lag_24"].notna()]
    return train, holdout


def train_day(ctx: StageContext, day: date, params: Mapping[str, Any] | None = None) -> MLResult:
    started = time.monotonic()
    loc = locations(ctx.settings)
    features, version = read_features(
        ctx, loc.features_hourly, day, STAGE, key=["device_id", "hour_start"]
    )
    features["hour_start"] = pd.to_datetime(features["hour_start"], utc=True)
    train, holdout = split(features, day)
    if len(train) < MIN_TRAIN_ROWS or holdout.empty:
        why = (
            f"{len(train)} training rows with 24 h of history (need {MIN_TRAIN_ROWS}) and "
            f"{len(holdout)} hold-out rows: a forecast needs the previous day"
        )
        return skipped(STAGE, day, ctx, why, started)
    params = {**Forecaster().get_params(), **(params or {})}
    model = Forecaster(**params).fit(train, train["actual"])

    def metrics_of(other: Any) -> dict[str, float]:
        return forecast_metrics(
            holdout["actual"], other.predict(holdout), holdout["lag_24"], holdout["scale"]
        )

    fitted = Fitted(
        model=model,
        metrics=metrics_of(model),
        score_name="mae",
        higher_is_better=False,
        evaluate=lambda other: metrics_of(other)["mae"],
        example=holdout[list(FORECAST_INPUTS)].head(5).reset_index(drop=True),
        params=params | {"holdout_start": holdout_start(day).isoformat()},
        counts={"train_rows": len(train), "holdout_rows": len(holdout)},
        trusted_types=TRUSTED_TYPES,
    )
    lineage = {
        "features_table": loc.features_hourly,
        "features_version": version,
        "gold_snapshot_id": int(features["_source_version"].max()),
    }
    model = registry.forecast_model(ctx.settings)
    return log_and_promote(ctx, STAGE, day, model, fitted, lineage, started)


def run_interval(ctx: StageContext) -> list[MLResult]:
    return [train_day(ctx, day) for day in ctx.days()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
