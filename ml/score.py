"""Score the interval with the registry's champion models and write the predictions to Iceberg
gold tables through pyiceberg (same catalog as Spark). A day's pass replaces the partitions of
the event dates its ingest touched (late events included), so reruns never duplicate rows."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa

from lakehouse.context import StageContext, StageInputError, interval_parser, parse_interval
from lakehouse.tables import locations
from ml import lake, registry
from ml.features import touched_dates
from ml.forecast import usable
from ml.hourly_features import MIN_WINDOW_HOURS
from ml.stage import MLResult, entrypoint

STAGE = "score"
TS = pa.timestamp("us", tz="UTC")

ANOMALY_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("device_id", pa.string()),
        ("sensor_type", pa.string()),
        ("event_ts", TS),
        ("event_date", pa.date32()),
        ("value", pa.float64()),
        ("anomaly_score", pa.float64()),
        ("is_anomaly", pa.bool_()),
        ("model_version", pa.int64()),
        ("_run_id", pa.string()),
    ]
)
FORECAST_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("sensor_type", pa.string()),
        ("hour_start", TS),
        ("event_date", pa.date32()),
        ("forecast", pa.float64()),
        ("seasonal_naive", pa.float64()),
        ("actual", pa.float64()),
        ("model_version", pa.int64()),
        ("_run_id", pa.string()),
    ]
)


def anomaly_rows(features: pd.DataFrame, model: Any, version: str, run_id: str) -> pd.DataFrame:
    out = features[["event_id", "device_id", "sensor_type", "event_ts", "event_date", "value"]]
    scores = model.anomaly_score(features)  # once: predict would score every row again
    return out.assign(
        anomaly_score=scores,
        is_anomaly=model.flags(scores).astype(bool),
        model_version=int(version),
        _run_id=run_id,
    )[ANOMALY_SCHEMA.names]


def forecast_rows(features: pd.DataFrame, model: Any, version: str, run_id: str) -> pd.DataFrame:
    rows = features[usable(features)]
    return pd.DataFrame(
        {
            "device_id": rows["device_id"],
            "sensor_type": rows["sensor_type"],
            "hour_start": rows["hour_start"],
            "event_date": rows["event_date"],
            "forecast": model.predict(rows) if len(rows) else [],
            "seasonal_naive": rows["lag_24"],
            "actual": rows["actual"],
            "model_version": int(version),
            "_run_id": run_id,
        }
    )[FORECAST_SCHEMA.names]


def without_history(features: pd.DataFrame) -> dict[str, int]:
    """Device -> hours of the day it is not forecast for: under MIN_WINDOW_HOURS of its own
    trailing history (a device new to the fleet, or back from an outage). The models are
    device-agnostic, so such a device is scored for anomalies and forecast once it has that
    history; until then the result names it instead of leaving it out silently."""
    missing = features.loc[~usable(features), "device_id"]
    return {str(k): int(v) for k, v in missing.value_counts().sort_index().items()}


def history_note(missing: dict[str, int], shown: int = 5) -> str:
    if not missing:
        return ""
    listed = ", ".join(f"{device} ({hours} h)" for device, hours in list(missing.items())[:shown])
    more = f" and {len(missing) - shown} more devices" if len(missing) > shown else ""
    return f"not forecast, under {MIN_WINDOW_HOURS} h of history: {listed}{more}"


def _features(ctx: StageContext, uri: str, day: date, required: bool = True) -> pd.DataFrame:
    """The features of one event date; missing ones fail only when ``required``. The features
    stage counts events it could not featurize (events_without_features)."""
    frame, version = lake.read_delta(ctx.settings, uri, partition="event_date", values=[day])
    if required and (version is None or frame.empty):
        raise StageInputError(f"{STAGE} {day}: no features for {day} at {uri}; run features")
    return frame


def score_day(ctx: StageContext, day: date) -> MLResult:
    """Score every event date the day's ingest touched: the day, and the earlier dates its
    late events belong to (their features were just recomputed), so no late event is left
    unscored and a rerun rewrites the same partitions."""
    started = time.monotonic()
    loc = locations(ctx.settings)
    result = MLResult(STAGE, day, ctx.run_id)
    dates, _ = touched_dates(ctx, day, stage=STAGE)
    result.counts["event_dates"] = len(dates)
    client = registry.client(ctx.settings)
    notes = []
    jobs = (
        ("anomaly", registry.anomaly_model(ctx.settings), loc.features_events,
         loc.gold_anomaly_scores, ANOMALY_SCHEMA),
        ("forecast", registry.forecast_model(ctx.settings), loc.features_hourly,
         loc.gold_forecasts, FORECAST_SCHEMA),
    )  # fmt: skip
    for kind, name, features_uri, table, schema in jobs:
        champion = registry.load_champion(client, name)
        if champion is None:
            notes.append(f"no {name}@{registry.CHAMPION} yet: {kind} not scored")
            continue
        model, version = champion
        result.versions[f"{kind}_model_version"] = int(version)
        build = anomaly_rows if kind == "anomaly" else forecast_rows
        missing: dict[str, int] = {}
        for target in dates:
            features = _features(ctx, features_uri, target, required=target == day)
            if features.empty:  # an earlier date with too few readings for features
                continue
            rows = build(features, model, version, ctx.run_id)
            lake.replace_iceberg_partition(
                ctx.settings, loc.iceberg_warehouse, table, schema, rows, target
            )
            counts = result.counts
            counts[f"{kind}_rows"] = counts.get(f"{kind}_rows", 0) + len(rows)
            if kind == "anomaly":
                counts["anomalies_flagged"] = counts.get("anomalies_flagged", 0) + int(
                    rows["is_anomaly"].sum()
                )
            elif target == day:
                missing = without_history(features)
        if kind == "forecast":
            result.counts["forecast_rows_without_history"] = sum(missing.values())
            notes.append(history_note(missing))
    result.note = "; ".join(n for n in notes if n)
    result.seconds = time.monotonic() - started
    return result


def run_interval(ctx: StageContext) -> list[MLResult]:
    return [score_day(ctx, day) for day in ctx.days()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
