"""The DAGs are the pipeline definition: same tasks, same edges, house-style DAG settings."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from dag_tools import SAMPLE_END, SAMPLE_START, task_context

from lakehouse.pipeline import STAGES, edges


def dag_edges(dag: Any) -> set[tuple[str, str]]:
    return {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}


# The pipeline as a reader of the README knows it, written out (not derived from STAGES).
PIPELINE_EDGES = {
    ("ingest", "bronze"), ("bronze", "silver"), ("silver", "gold"), ("gold", "features"),
    ("features", "train_anomaly"), ("features", "train_forecast"),
    ("train_anomaly", "score"), ("train_forecast", "score"), ("score", "report"),
}  # fmt: skip


def test_tasks_are_the_stages(end_to_end: Any) -> None:
    assert sorted(end_to_end.task_ids) == sorted(s.name for s in STAGES)
    assert len(end_to_end.task_ids) == 9


def test_task_graph_is_the_pipeline(end_to_end: Any) -> None:
    assert dag_edges(end_to_end) == PIPELINE_EDGES
    # ... and the embedded runner's definition is the same graph.
    assert edges(STAGES) == PIPELINE_EDGES


def test_task_kind_follows_the_stage_kind(end_to_end: Any) -> None:
    from lakehouse_dags.operators import LakehousePodOperator, LakehouseSparkOperator

    kinds = {"spark": LakehouseSparkOperator, "python": LakehousePodOperator}
    for stage in STAGES:
        task = end_to_end.get_task(stage.name)
        assert type(task) is kinds[stage.kind], stage.name
        assert task.module == stage.module


def test_end_to_end_schedule_is_daily_0200_utc_with_data_intervals(end_to_end: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    timetable = end_to_end.timetable
    # A data-interval timetable: each run covers [previous 02:00, this 02:00), which the stages
    # get as --start/--end (a trigger timetable would give an empty interval).
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.expression == "0 2 * * *"
    assert str(timetable.timezone) in {"UTC", "Timezone('UTC')"}


def test_maintenance_is_weekly_and_sequential(maintenance: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(maintenance.timetable, CronDataIntervalTimetable)
    assert maintenance.timetable.expression == "0 4 * * 0"
    assert dag_edges(maintenance) == {("delta_maintenance", "iceberg_maintenance")}


@pytest.mark.parametrize("dag_id", ["lakehouse_end_to_end", "lakehouse_maintenance"])
def test_house_style(dagbag: Any, dag_id: str) -> None:
    from lakehouse_dags.operators import log_failure, log_retry

    dag = dagbag.dags[dag_id]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md
    assert dag.tags
    assert "lakehouse" in dag.tags
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff > 1, task.task_id
        assert task.max_retry_delay <= timedelta(hours=1)
        assert task.execution_timeout is not None
        assert log_failure in _callbacks(task.on_failure_callback), task.task_id
        assert log_retry in _callbacks(task.on_retry_callback), task.task_id
        assert task.doc_md, task.task_id


def _callbacks(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def test_failure_callback_logs_one_summary_line(
    end_to_end: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from lakehouse_dags.operators import log_failure

    task = end_to_end.get_task("silver")
    context = task_context(task, try_number=4)
    context["exception"] = RuntimeError("silver 2026-01-05: counts do not reconcile\ntraceback")
    with caplog.at_level(logging.ERROR, logger="lakehouse.dags"):
        log_failure(context)
    lines = [r.getMessage() for r in caplog.records if r.name == "lakehouse.dags"]
    assert len(lines) == 1
    line = lines[0]
    assert "\n" not in line
    for part in (
        "FAILED",
        "dag=lakehouse_end_to_end",
        "task=silver",
        "try=4/4",
        f"[{SAMPLE_START.isoformat()}, {SAMPLE_END.isoformat()})",
        "RuntimeError: silver 2026-01-05: counts do not reconcile",
    ):
        assert part in line, (part, line)
