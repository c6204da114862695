"""The lakehouse pipeline on Kubernetes, built from the one pipeline definition.

Every stage of ``lakehouse.pipeline.STAGES`` becomes one task with the stage's name and its
upstream edges: ``spark`` stages submit a SparkApplication to the Kubeflow Spark Operator,
``python`` stages run a pod of the python image. Nothing is listed twice.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag
from lakehouse_dags.operators import DAG_KWARGS, stage_task

from lakehouse.pipeline import STAGES, topological_order

DOC_MD = (
    """
### lakehouse_end_to_end

One run processes one **data interval**: the day before the run, 02:00 UTC to 02:00 UTC, passed
to every stage as `--start <day> --end <next day> --run-id <Airflow run id>`. Stages are
idempotent, so a retry, a cleared task or a backfill rewrites exactly that interval.

| task | kind | what |
|------|------|------|
"""
    + "\n".join(f"| `{s.name}` | {s.kind} | {s.description} |" for s in STAGES)
    + """

* Spark stages: one SparkApplication per try (`lh-<task>-<day>-<run hash>-t<try>`), driver log
  streamed here, deleted on success, kept three days on failure.
* Python stages: one pod per try, same naming, deleted on success.
* Retries: 3, exponential backoff from 2 minutes (max 30); each failed task logs one
  `lakehouse task FAILED: ...` line.
* Backfill: `airflow backfill create --dag-id lakehouse_end_to_end --from-date D1 --to-date D2`
  creates one run per interval (one at a time).
"""
)


@dag(
    dag_id="lakehouse_end_to_end",
    description="ingest -> bronze/silver/gold (Spark) -> features -> train -> score -> report",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    dagrun_timeout=pendulum.duration(hours=8),
    tags=["lakehouse", "pipeline", "spark", "ml"],
    doc_md=DOC_MD,
    **DAG_KWARGS,
)
def lakehouse_end_to_end() -> None:
    tasks = {stage.name: stage_task(stage) for stage in topological_order(STAGES)}
    for stage in STAGES:
        for upstream in stage.upstream:
            tasks[upstream] >> tasks[stage.name]


lakehouse_end_to_end()
