"""Weekly table maintenance of the lakehouse, through Spark (one SparkApplication per format)."""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag
from lakehouse_dags.operators import DAG_KWARGS, LakehouseSparkOperator

from lakehouse.pipeline import TABLE_SERVICES

MAINTENANCE_MODULE = "spark_apps.maintenance"
RETAIN_DAYS = 7

DOC_MD = f"""
### lakehouse_maintenance

Sundays 04:00 UTC, after the nightly pipeline. Retention is {RETAIN_DAYS} days before the end of
the week's data interval (so a re-run removes the same files and snapshots):

* `delta_maintenance`: `OPTIMIZE` (compaction) and `VACUUM` of every Delta table (bronze,
  silver, audit, features).
* `iceberg_maintenance`: `rewrite_data_files`, `expire_snapshots` (keeping at least the last 5)
  and `remove_orphan_files` of every Iceberg table (gold metrics and predictions).

Both run `{MAINTENANCE_MODULE}` in the spark image, one after the other so that one Spark
application at a time fits the footprint budget.
"""


@dag(
    dag_id="lakehouse_maintenance",
    description="Weekly Delta OPTIMIZE/VACUUM and Iceberg compaction, snapshot and orphan cleanup",
    schedule=CronDataIntervalTimetable("0 4 * * 0", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    dagrun_timeout=pendulum.duration(hours=6),
    tags=["lakehouse", "maintenance", "spark"],
    doc_md=DOC_MD,
    **DAG_KWARGS,
)
def lakehouse_maintenance() -> None:
    delta = LakehouseSparkOperator(
        task_id="delta_maintenance",
        module=MAINTENANCE_MODULE,
        services=TABLE_SERVICES,
        extra_args=["--formats", "delta", "--retain-days", str(RETAIN_DAYS)],
        doc_md="Delta OPTIMIZE and VACUUM of every Delta table.",
    )
    iceberg = LakehouseSparkOperator(
        task_id="iceberg_maintenance",
        module=MAINTENANCE_MODULE,
        services=TABLE_SERVICES,
        extra_args=["--formats", "iceberg", "--retain-days", str(RETAIN_DAYS)],
        doc_md="Iceberg rewrite_data_files, expire_snapshots and remove_orphan_files.",
    )
    delta >> iceberg


lakehouse_maintenance()
