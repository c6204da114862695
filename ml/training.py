"""The training flow both models share: read features at a pinned Delta version, split off the
interval's last hours as hold-out, fit, evaluate, log to MLflow with lineage, register, and move
``champion`` only if the new model beats the current one on the same hold-out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from lakehouse.context import StageContext, StageInputError
from ml import lake, registry
from ml.stage import MLResult

LOOKBACK_DAYS = 7  # feature days a model trains on (hold-out included)
HOLDOUT_HOURS = 12  # the interval's last hours: evaluation data, never trained on


def holdout_start(day: date, hours: int = HOLDOUT_HOURS) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=24 - hours)


def lookback(day: date, days: int = LOOKBACK_DAYS) -> list[date]:
    return [day - timedelta(days=k) for k in range(days - 1, -1, -1)]


def read_features(
    ctx: StageContext, uri: str, day: date, stage: str, key: Sequence[str]
) -> tuple[pd.DataFrame, int]:
    """Feature rows of the lookback window, at the table version read (pinned for lineage),
    sorted by ``key``: the tables keep no row order (Spark writes silver in whatever order its
    tasks finish), and a seeded model still depends on it (the forest's subsample), so the same
    data must reach the trainer in the same order to give the same model."""
    table = lake.delta_table(ctx.settings, uri)
    if table is None:
        raise StageInputError(f"{stage} {day}: no feature table at {uri}; run features first")
    version = int(table.version())
    frame, _ = lake.read_delta(
        ctx.settings, uri, partition="event_date", values=lookback(day), version=version
    )
    if frame.empty or not (pd.to_datetime(frame["event_date"]).dt.date == day).any():
        raise StageInputError(
            f"{stage} {day}: no feature rows for {day} in {uri}; run features for it first"
        )
    return frame.sort_values(list(key), ignore_index=True), version


@dataclass
class Fitted:
    """What a model-specific trainer hands back to the shared flow."""

    model: Any
    metrics: dict[str, float]  # on the hold-out
    score_name: str  # the metric deciding the champion
    higher_is_better: bool
    evaluate: Callable[[Any], float]  # the deciding metric of any model on the same hold-out
    example: pd.DataFrame  # model input example (signature)
    params: dict[str, Any]
    counts: dict[str, int]
    trusted_types: tuple[str, ...]  # for MLflow's skops serialisation


def pip_requirements() -> list[str]:
    """The model's runtime packages, pinned to what trained it. Given explicitly, MLflow skips
    inferring them, which re-imports the model in a subprocess (tens of seconds)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "lightgbm", "pandas", "numpy")]


def skipped(stage: str, day: date, ctx: StageContext, why: str, started: float) -> MLResult:
    result = MLResult(stage, day, ctx.run_id, counts={"skipped": 1}, note=f"skipped: {why}")
    result.seconds = time.monotonic() - started
    return result


def log_and_promote(
    ctx: StageContext,
    stage: str,
    day: date,
    model_name: str,
    fitted: Fitted,
    lineage: dict[str, Any],
    started: float,
) -> MLResult:
    client = registry.client(ctx.settings)
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    exp = registry.experiment_id(client, ctx.settings, model_name)
    champion = registry.load_champion(client, model_name)
    previous = (champion[1], fitted.evaluate(champion[0])) if champion else None
    with mlflow.start_run(experiment_id=exp, run_name=f"{stage} {day}") as run:
        mlflow.log_params(fitted.params)
        mlflow.set_tags(
            {
                "interval.start": day.isoformat(),
                "lakehouse.run_id": ctx.run_id,
                "lakehouse.stage": stage,
                **{f"lineage.{k}": str(v) for k, v in lineage.items()},
            }
        )
        mlflow.log_metrics(fitted.metrics)
        signature = infer_signature(fitted.example, fitted.model.predict(fitted.example))
        info = mlflow.sklearn.log_model(
            fitted.model,
            name="model",
            signature=signature,
            input_example=fitted.example,
            skops_trusted_types=list(fitted.trusted_types),
            pip_requirements=pip_requirements(),
        )
        version = registry.register(client, model_name, info, run.info.run_id)
        decision = registry.promote_if_better(
            client,
            model_name,
            version,
            fitted.metrics[fitted.score_name],
            previous,
            fitted.higher_is_better,
        )
        if decision.previous_score is not None:
            mlflow.log_metric(f"champion_{fitted.score_name}", decision.previous_score)
        mlflow.set_tags(
            {"champion.promoted": str(decision.promoted), "champion.reason": decision.reason}
        )
    result = MLResult(stage, day, ctx.run_id, counts=dict(fitted.counts))
    result.counts["promoted"] = int(decision.promoted)
    result.metrics = {k: round(float(v), 4) for k, v in fitted.metrics.items()}
    result.versions = {k: int(v) for k, v in lineage.items() if isinstance(v, int)}
    result.versions |= {
        "model_version": int(version),
        "champion_version": int(decision.champion_version),
    }
    result.artifacts = {"mlflow_run_id": run.info.run_id}
    result.note = f"v{version} {fitted.score_name}={fitted.metrics[fitted.score_name]:.3f}; " + (
        "champion" if decision.promoted else decision.reason
    )
    result.seconds = time.monotonic() - started
    return result
