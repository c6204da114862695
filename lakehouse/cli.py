"""``lakehouse``: the command line for the embedded pipeline.

lakehouse demo                          the whole pipeline on embedded defaults
lakehouse run --start D [--end D]       chosen stages for a date range
lakehouse generate --start D [--end D]  only write raw events
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, timedelta

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lakehouse.context import ReconciliationError, StageInputError, interval_parser
from lakehouse.failures import save_traceback, unreachable
from lakehouse.pipeline import STAGES, Stage
from lakehouse.runner import PipelineReport, run_pipeline, write_summary
from lakehouse.settings import Settings, SettingsError, load_settings

console = Console()


def _counts_table(report: PipelineReport) -> Table:
    table = Table(title=f"Pipeline {report.run_id}: {report.start} .. {report.end - timedelta(1)}")
    table.add_column("stage")
    table.add_column("counts (summed over days)")
    table.add_column("seconds", justify="right")
    seconds: dict[str, float] = {}
    for r in report.results:
        seconds[r.stage] = seconds.get(r.stage, 0.0) + r.seconds
    for stage, counts in report.totals().items():
        text = "  ".join(f"{k}={v:,}" for k, v in counts.items())
        table.add_row(stage, text, f"{seconds[stage]:.1f}")
    return table


def _run(settings: Settings, start: date, end: date, stages: Sequence[str] | None) -> int:
    days = (end - start).days
    n_stages = len(stages) if stages else len(STAGES)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} stage-days"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=days * n_stages)
        started = {"n": 0}
        current = {"at": "start-up"}

        def on_stage(stage: Stage, day: date) -> None:
            progress.update(task, completed=started["n"], description=f"{day} {stage.name}")
            started["n"] += 1
            current["at"] = f"{day} {stage.name}"

        def on_done(stage: Stage, day: date, results: list) -> None:
            for r in results:
                counts = "  ".join(f"{k}={v:,}" for k, v in r.counts.items())
                progress.console.print(f"{day} {stage.name:<7} {r.seconds:6.1f} s  {counts}")

        try:
            report = run_pipeline(
                settings, start, end, stages=stages, on_stage=on_stage, on_done=on_done,
                on_wait=lambda msg: progress.console.print(f"{current['at']}: {msg}"),
            )  # fmt: skip
        except Exception as err:
            line = unreachable(err, settings)
            if line is None:
                raise
            progress.stop()
            console.print(f"[red]error:[/] {current['at']} failed: {line}")
            saved = save_traceback(err, settings)
            if saved is not None:
                console.print(f"Full trace: {saved}")
            return 1
        progress.update(task, completed=started["n"], description="done")
    data = write_summary(settings, report)
    console.print(_counts_table(report))
    if report.spark_startup_seconds:
        console.print(f"Spark session start-up: {report.spark_startup_seconds:.1f} s")
    status = "[green]reconciled[/]" if data["reconciled"] else "[red]NOT reconciled[/]"
    console.print(f"Counts {status}. Summary: {settings.summary_path}")
    if data.get("report"):
        console.print(f"Report: {data['report']}")
    return 0 if data["reconciled"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run every stage over the demo interval on embedded defaults")
    run_p = sub.add_parser(
        "run", help="run stages for a date range", parents=[interval_parser("", add_help=False)]
    )
    run_p.add_argument("--stages", help="comma-separated subset, e.g. bronze,silver")
    sub.add_parser(
        "generate", help="write raw events only", parents=[interval_parser("", add_help=False)]
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "demo":
            start = settings.demo_start
            end = start + timedelta(days=settings.demo_days)
            console.print(
                f"Lakehouse demo: {settings.demo_days} day(s) from {start}, "
                f"{settings.devices} devices, home {settings.home}"
            )
            return _run(settings, start, end, None)
        end = args.end or args.start + timedelta(days=1)
        if end <= args.start:
            parser.error(f"--end ({end}) must be after --start ({args.start})")
        if args.command == "generate":
            return _run(settings, args.start, end, ["ingest"])
        stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
        return _run(settings, args.start, end, stages)
    except (SettingsError, StageInputError, ReconciliationError, ValueError) as err:
        console.print(f"[red]error:[/] {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
