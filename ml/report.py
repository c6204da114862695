"""An HTML report a person would rather look at than read: events per hour, quarantine reasons,
detected vs true anomalies, forecast vs actual and model metrics, as embedded PNGs. Written
under the warehouse (``reports/report_<day>.html``) and logged to MLflow as an artifact."""

from __future__ import annotations

import base64
import html
import io
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from lakehouse import storage
from lakehouse.context import StageContext, StageInputError, interval_parser, parse_interval
from lakehouse.tables import join_uri, locations
from ml import lake, registry
from ml.stage import MLResult, entrypoint

STAGE = "report"
SAMPLE_DEVICES = 3
KIND_COLOURS = {"spike": "tab:red", "drift": "tab:orange", "stuck": "tab:purple"}


# --------------------------------------------------------------------------- pure: figures


def _figure(width: float = 10, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained")


def png_base64(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def naive_utc(ts: pd.Series) -> pd.Series:
    """UTC timestamps without the zone, which matplotlib plots without complaint."""
    return pd.to_datetime(ts, utc=True).dt.tz_convert(None)


def events_per_hour_figure(hourly: pd.DataFrame) -> Any:
    fig, ax = _figure()
    per_hour = hourly.groupby(naive_utc(hourly["hour_start"]))["events"].sum().sort_index()
    ax.bar(per_hour.index, per_hour.to_numpy(), width=1 / 24 * 0.9, color="tab:blue")
    ax.set_title("Silver events per hour (from gold.device_hourly)")
    ax.set_ylabel("events")
    return fig


def quarantine_figure(reasons: pd.Series) -> Any:
    fig, ax = _figure(height=2.8)
    counts = reasons.value_counts().sort_values()
    ax.barh(counts.index.astype(str), counts.to_numpy(), color="tab:gray")
    ax.set_title("Quarantined lines by reason")
    ax.set_xlabel("lines")
    return fig


def anomaly_figure(device: str, scored: pd.DataFrame, truth: pd.DataFrame) -> Any:
    fig, ax = _figure()
    scored = scored.assign(event_ts=naive_utc(scored["event_ts"])).sort_values("event_ts")
    ax.plot(scored["event_ts"], scored["value"], lw=0.7, color="tab:blue", label="value")
    merged = scored.merge(truth[["event_id", "kind"]], on="event_id", how="inner")
    for kind, rows in merged.groupby("kind"):
        ax.scatter(rows["event_ts"], rows["value"], s=14, color=KIND_COLOURS.get(kind, "k"),
                   label=f"true {kind}")  # fmt: skip
    flagged = scored[scored["is_anomaly"]]
    ax.scatter(flagged["event_ts"], flagged["value"], s=40, facecolors="none",
               edgecolors="black", lw=0.8, label="detected")  # fmt: skip
    ax.set_title(f"{device}: detected vs true anomalies")
    ax.legend(loc="upper right", fontsize=7, ncols=5)
    return fig


def forecast_figure(device: str, rows: pd.DataFrame) -> Any:
    fig, ax = _figure(height=2.8)
    rows = rows.assign(hour_start=naive_utc(rows["hour_start"])).sort_values("hour_start")
    ax.plot(rows["hour_start"], rows["actual"], marker="o", ms=3, label="actual", color="black")
    ax.plot(rows["hour_start"], rows["forecast"], marker="o", ms=3, label="LightGBM forecast")
    ax.plot(rows["hour_start"], rows["seasonal_naive"], ls="--", label="seasonal naive")
    ax.set_title(f"{device}: next-hour mean, forecast vs actual")
    ax.legend(loc="upper right", fontsize=7, ncols=3)
    return fig


def metrics_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(model)}</td><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
        for model, values in metrics.items()
        for k, v in sorted(values.items())
    )
    return (
        f"<table><tr><th>model</th><th>metric</th><th>value</th></tr>{rows}</table>"
        if rows
        else "<p>No model was trained for this interval.</p>"
    )


def render_html(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """``sections``: (heading, HTML body) pairs; images are already embedded."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def img(fig: Any) -> str:
    return f"<img src='data:image/png;base64,{png_base64(fig)}'>"


def sample_devices(truth: pd.DataFrame, devices: Sequence[str], n: int = SAMPLE_DEVICES) -> list:
    """Devices with the most labelled anomalies (then by id), so the plots show something."""
    counts = truth["device_id"].value_counts() if not truth.empty else pd.Series(dtype=int)
    ranked = sorted(devices, key=lambda d: (-int(counts.get(d, 0)), d))
    return ranked[:n]


# --------------------------------------------------------------------------- I/O edge


def latest_metrics(client: Any, settings: Any, day: date) -> dict[str, dict[str, float]]:
    """Metrics of each model's latest training run for ``day``."""
    out = {}
    for name in (registry.anomaly_model(settings), registry.forecast_model(settings)):
        exp = client.get_experiment_by_name(name)
        if exp is None:
            continue
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`interval.start` = '{day.isoformat()}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            out[name] = dict(runs[0].data.metrics)
    return out


def _touched(ctx: StageContext, day: date) -> list[str]:
    from ml.features import touched_dates

    try:
        return [d.isoformat() for d in touched_dates(ctx, day, stage="report")[0]]
    except StageInputError:
        return []  # nothing ingested that day: the report says so in its own sections


def build_report(ctx: StageContext, day: date) -> tuple[str, dict[str, dict[str, float]]]:
    from pyiceberg.expressions import EqualTo, In

    settings, loc = ctx.settings, locations(ctx.settings)
    wh = loc.iceberg_warehouse
    # The day before and the day, and every earlier date the day's late events touched.
    days = sorted({(day - timedelta(days=1)).isoformat(), day.isoformat(), *_touched(ctx, day)})
    sections: list[tuple[str, str]] = []

    hourly, _ = lake.read_iceberg(settings, wh, loc.gold_device_hourly, In("event_date", days))
    if not hourly.empty:
        sections.append(("Events per hour", img(events_per_hour_figure(hourly))))
    quarantine, _ = lake.read_delta(
        settings, loc.silver_quarantine, partition="ingest_date", values=[day], columns=["reasons"]
    )
    if not quarantine.empty:
        reasons = quarantine["reasons"].explode().dropna()
        sections.append(("Quarantine reasons", img(quarantine_figure(reasons))))

    today = EqualTo("event_date", days[1])
    scored, _ = lake.read_iceberg(settings, wh, loc.gold_anomaly_scores, today)
    truth = lake.read_ground_truth(settings, [day])
    if not scored.empty:
        figures = "".join(
            img(anomaly_figure(d, scored[scored["device_id"] == d], truth))
            for d in sample_devices(truth, sorted(scored["device_id"].unique()))
        )
        sections.append(("Detected vs true anomalies (sample devices)", figures))
    forecasts, _ = lake.read_iceberg(settings, wh, loc.gold_forecasts, today)
    if not forecasts.empty:
        figures = "".join(
            img(forecast_figure(d, forecasts[forecasts["device_id"] == d]))
            for d in sorted(forecasts["device_id"].unique())[:SAMPLE_DEVICES]
        )
        sections.append(("Forecast vs actual (sample devices)", figures))

    client = registry.client(settings)
    metrics = latest_metrics(client, settings, day)
    sections.append(("Model metrics (hold-out: the interval's last hours)", metrics_table(metrics)))
    return render_html(f"IoT lakehouse report {day}", sections), metrics


def report_day(ctx: StageContext, day: date) -> MLResult:
    started = time.monotonic()
    loc = locations(ctx.settings)
    page, metrics = build_report(ctx, day)
    uri = join_uri(loc.reports, f"report_{day.isoformat()}.html")
    storage.write_bytes(ctx.settings, uri, page.encode("utf-8"))
    client = registry.client(ctx.settings)
    import mlflow

    exp = registry.experiment_id(client, ctx.settings, registry.report_experiment(ctx.settings))
    with mlflow.start_run(experiment_id=exp, run_name=f"report {day}") as run:
        mlflow.set_tags({"interval.start": day.isoformat(), "lakehouse.run_id": ctx.run_id})
        mlflow.log_text(page, f"report_{day.isoformat()}.html")
    result = MLResult(STAGE, day, ctx.run_id, counts={"report_bytes": len(page)})
    result.metrics = {
        f"{name.removeprefix('lakehouse-')}.{k}": round(v, 4)
        for name, values in metrics.items()
        for k, v in values.items()
    }
    result.artifacts = {"report": uri, "mlflow_run_id": run.info.run_id}
    result.seconds = time.monotonic() - started
    return result


def run_interval(ctx: StageContext) -> list[MLResult]:
    return [report_day(ctx, day) for day in ctx.days()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_interval(interval_parser(__doc__.splitlines()[0]), argv)
    return entrypoint(STAGE, args, run_interval)


if __name__ == "__main__":
    sys.exit(main())
