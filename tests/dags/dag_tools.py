"""Shared by the DAG tests: paths, the cluster-like settings, and rendering of a task the way
the task runner does it (a RuntimeTaskInstance context; no database, API server or cluster).

Airflow is configured for the tests only through the environment, before it is imported: a
throwaway AIRFLOW_HOME and quiet logging.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lakehouse-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
CRD_FILE = (
    ROOT / "charts/.build/lakehouse/charts/spark-operator/crds"
    / "sparkoperator.k8s.io_sparkapplications.yaml"
)  # fmt: skip
CHART_TOOLS = ROOT / "charts/scripts/chart-tools.sh"

# The DAG folder is on sys.path in Airflow (lakehouse_dags is imported from there).
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))

# The sample data interval: the run of 2026-01-06 02:00 UTC processes 2026-01-05.
SAMPLE_START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
SAMPLE_END = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
SAMPLE_RUN_ID = "scheduled__2026-01-05T02:00:00+00:00"


def task_context(
    task: Any,
    *,
    try_number: int = 1,
    run_id: str = SAMPLE_RUN_ID,
    start: datetime = SAMPLE_START,
    end: datetime = SAMPLE_END,
) -> dict[str, Any]:
    """The template context the task runner gives ``task`` for one try of one run."""
    from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    dag_run = DagRun(
        dag_id=task.dag_id,
        run_id=run_id,
        logical_date=start,
        data_interval_start=start,
        data_interval_end=end,
        run_after=end,
        run_type="scheduled" if run_id.startswith("scheduled__") else "manual",
        state="running",
        consumed_asset_events=[],
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run_id,
        try_number=try_number,
        dag_version_id=uuid.uuid4(),
        map_index=-1,
        task=task,
        max_tries=task.retries,
        start_date=datetime.now(UTC),
        _ti_context_from_server=TIRunContext(dag_run=dag_run, max_tries=task.retries),
    )
    return dict(ti.get_template_context())


def _fresh_copy(task: Any) -> Any:
    """A copy of the task to render (rendering replaces template fields in place)."""
    import copy

    return copy.deepcopy(task)


def render_spark_application(task: Any, **kwargs: Any) -> dict[str, Any]:
    """The SparkApplication body the operator would submit for this try: rendered through
    Airflow's templating, then through the operator's own preparation (task labels, env, name),
    stopping right before the Kubernetes API call."""
    task = _fresh_copy(task)
    context = task_context(task, **kwargs)
    task.render_template_fields(context)
    task.name = task.create_job_name()
    captured: dict[str, Any] = {}

    def no_existing_job(*_args: Any, **_kwargs: Any) -> None:
        return None

    def capture(launcher: Any, _context: Any) -> None:
        captured["body"] = launcher.body
        return None

    # No Kubernetes client: the launcher is built with none, the lookup of a job to reattach to
    # finds none and the submission is captured instead of sent.
    task.__dict__.update(client=None, custom_obj_api=None)
    task.find_spark_job = no_existing_job
    task.get_or_create_spark_crd = capture
    task._setup_spark_configuration(context)
    return captured["body"]


def render_pod(task: Any, **kwargs: Any) -> dict[str, Any]:
    """The Pod the operator would create for this try (dry run: no Kubernetes client)."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    task = _fresh_copy(task)
    context = task_context(task, **kwargs)
    task.render_template_fields(context)
    pod = task.build_pod_request_obj(context, dry_run=True)
    return PodGenerator.serialize_pod(pod)
