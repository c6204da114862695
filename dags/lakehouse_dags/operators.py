"""The two task kinds of the pipeline definition, failure reporting and the shared DAG settings.

* ``spark`` stages: :class:`LakehouseSparkOperator` submits ``templates/spark_application.yaml``
  (one SparkApplication per try), streams the driver log into the task log and deletes the
  application when it succeeded.
* ``python`` stages: :class:`LakehousePodOperator` runs ``templates/stage_pod.yaml`` (the python
  image, ``python -m <module> --start D --end D --run-id X``), deleting the pod when it succeeded.

Only names are bound here; the templates are read and rendered by Airflow when a task runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import SparkKubernetesOperator

from lakehouse.pipeline import Service, Stage
from lakehouse_dags.deployment import DEPLOYMENT

# No filesystem access at import (no resolve()): the path is only handed to Jinja's loader.
TEMPLATES = Path(__file__).parent.parent / "templates"
SPARK_APPLICATION_TEMPLATE = "spark_application.yaml"
STAGE_POD_TEMPLATE = "stage_pod.yaml"
# Jinja expression of the per-(run, task, try) name, shared by both templates and the pods.
NAME_TEMPLATE = (
    "{{ lakehouse.name(dag.dag_id, task.task_id, run_id, ti.try_number, logical_date) }}"
)

log = logging.getLogger("lakehouse.dags")


def _summary(context: Any, outcome: str) -> str:
    ti = context["ti"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    interval = f"[{start.isoformat()}, {end.isoformat()})" if start and end else "none"
    error = context.get("exception")
    reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}" if error else "-"
    return (
        f"lakehouse task {outcome}: dag={ti.dag_id} task={ti.task_id} run_id={ti.run_id} "
        f"try={ti.try_number}/{ti.max_tries + 1} interval={interval} error={reason}"
    )


def log_failure(context: Any) -> None:
    """on_failure_callback: one summary line per finally failed task."""
    log.error(_summary(context, "FAILED"))


def log_retry(context: Any) -> None:
    """on_retry_callback: one line per try that will be retried."""
    log.warning(_summary(context, "will retry"))


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "lakehouse",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, 4, 8 minutes ...
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": log_failure,
    "on_retry_callback": log_retry,
}

# DAG keyword arguments shared by the lakehouse DAGs.
DAG_KWARGS: dict[str, Any] = {
    "catchup": False,
    "max_active_runs": 1,  # one interval at a time: stages are idempotent, not concurrent
    "default_args": DEFAULT_ARGS,
    "template_searchpath": [str(TEMPLATES)],
    "user_defined_macros": {"lakehouse": DEPLOYMENT},
    "render_template_as_native_obj": False,
}


class LakehouseSparkOperator(SparkKubernetesOperator):
    """Submits the SparkApplication of one Spark stage module.

    ``module``, ``services`` and ``extra_args`` are read by the template (``task.module``); the
    application's
    name is rendered per try (no random suffix). Unlike the base operator, a failed application
    is kept for inspection (its timeToLiveSeconds removes it) and only a successful one is deleted.
    """

    def __init__(
        self,
        *,
        module: str,
        services: Sequence[Service],
        extra_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("application_file", SPARK_APPLICATION_TEMPLATE)
        kwargs.setdefault("namespace", "{{ lakehouse.namespace }}")
        kwargs.setdefault("in_cluster", True)
        super().__init__(
            random_name_suffix=False,
            get_logs=True,
            delete_on_termination=True,
            log_events_on_failure=True,
            **kwargs,
        )
        self.module = module
        self.services = list(services)
        self.extra_args = list(extra_args)

    def process_pod_deletion(self, pod: Any, *, reraise: bool = True) -> None:
        phase = getattr(getattr(pod, "status", None), "phase", None)
        if pod is not None and phase != "Succeeded":
            self.log.info("keeping SparkApplication %s (driver phase %s)", self.name, phase)
            return
        super().process_pod_deletion(pod, reraise=reraise)


class LakehousePodOperator(KubernetesPodOperator):
    """Runs one python stage module in the python image, from ``templates/stage_pod.yaml``."""

    template_fields: Sequence[str] = (*KubernetesPodOperator.template_fields, "pod_manifest")
    template_ext: Sequence[str] = (".yaml",)

    def __init__(self, *, module: str, services: Sequence[Service], **kwargs: Any) -> None:
        kwargs.setdefault("name", NAME_TEMPLATE)
        kwargs.setdefault("namespace", "{{ lakehouse.namespace }}")
        kwargs.setdefault("in_cluster", True)
        super().__init__(
            random_name_suffix=False,
            get_logs=True,
            on_finish_action="delete_succeeded_pod",
            log_events_on_failure=True,
            **kwargs,
        )
        self.module = module
        self.services = list(services)
        self.pod_manifest = STAGE_POD_TEMPLATE

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> Any:
        # pod_manifest holds the rendered template text once the task's fields are rendered.
        if self.pod_template_dict is None and self.pod_manifest != STAGE_POD_TEMPLATE:
            import yaml

            self.pod_template_dict = yaml.safe_load(self.pod_manifest)
        return super().build_pod_request_obj(context, dry_run=dry_run)


def stage_task(stage: Stage) -> SparkKubernetesOperator | KubernetesPodOperator:
    """The Airflow task of one pipeline stage; its task_id is the stage's name."""
    doc = f"`{stage.module}` ({stage.kind}): {stage.description}"
    if stage.kind == "spark":
        return LakehouseSparkOperator(
            task_id=stage.name, module=stage.module, services=stage.services, doc_md=doc
        )
    if stage.kind == "python":
        return LakehousePodOperator(
            task_id=stage.name, module=stage.module, services=stage.services, doc_md=doc
        )
    raise ValueError(f"stage {stage.name!r} has unknown kind {stage.kind!r}")
