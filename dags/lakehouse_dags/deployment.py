"""Everything that depends on the deployment, resolved at render time inside the worker.

Nothing here runs at import: the DAG files only reference ``{{ lakehouse.* }}`` in templates, so
parsing a DAG reads no file, no environment and no network. The Airflow pods get the lakehouse
ConfigMap and Secret with envFrom like every other lakehouse process; the keys below are the
DAGs' own (all optional; the defaults match `helm install lakehouse charts/lakehouse -n lakehouse`).

| variable                          | default                                       |
|-----------------------------------|-----------------------------------------------|
| LAKEHOUSE_K8S_NAMESPACE           | lakehouse                                     |
| LAKEHOUSE_K8S_RELEASE             | lakehouse (the Helm release of the chart)     |
| LAKEHOUSE_SPARK_IMAGE             | lakehouse/spark:<project version>             |
| LAKEHOUSE_PYTHON_IMAGE            | lakehouse/python:<project version>            |
| LAKEHOUSE_IMAGE_PULL_POLICY       | IfNotPresent (images loaded with `kind load`) |
| LAKEHOUSE_SPARK_SERVICE_ACCOUNT   | <release>-spark-operator-spark                |
| LAKEHOUSE_SECRET                  | <fullname>-credentials (credentials Secret)   |
| LAKEHOUSE_SPARK_CORE_REQUEST      | 500m (each driver and executor; limit 1 core) |
| LAKEHOUSE_STAGE_CPU_REQUEST       | 250m (each python stage pod; limit 1 core)    |

The Spark version comes from the version matrix (versions.env) through ``lakehouse.versions``;
the sparkConf from ``spark_apps.session.spark_conf`` on the worker's lakehouse settings.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date, datetime, timedelta
from typing import Any

# Where the spark image keeps the project's sources (lakehouse/, spark_apps/): the main files
# are local:// paths below it, it is on the image's PYTHONPATH and the driver's log4j2 file is
# spark_apps/log4j2.properties there (contract with images/spark).
APP_ROOT = "/opt/lakehouse"
# Spark application and pod names: DNS-1035 labels; the operator derives "<name>-driver" and
# "<name>-ui-svc" from a SparkApplication name, so names stay well under 63 characters.
MAX_NAME_LENGTH = 52
# A Kubernetes CPU quantity as the chart's schema takes it: "250m", "1", "0.5".
_CPU_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")


class DeploymentError(RuntimeError):
    """The worker cannot render a lakehouse task (the message says what is missing)."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def cpu_request(name: str, default: str) -> str:
    """A CPU request from the worker's environment; a malformed one fails the render naming it
    (the API server would reject the pod later, with a less helpful message)."""
    value = _env(name, default)
    if not _CPU_QUANTITY.match(value):
        raise DeploymentError(f"{name}={value!r} is not a CPU quantity (e.g. 250m or 1)")
    return value


def k8s_name(
    dag_id: str, task_id: str, run_id: str, try_number: int, logical_date: datetime | None
) -> str:
    """A DNS-1035 name unique per (DAG run, task, try), readable in `kubectl get`:
    ``lh-<task>-<logical day>-<hash of dag and run id>-t<try>``. A retry gets a new name, so it
    never hits "already exists"; the same try always gets the same name."""
    slug = re.sub(r"[^a-z0-9]+", "-", task_id.lower()).strip("-") or "task"
    digest = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:8]
    day = logical_date.strftime("%Y%m%d") if logical_date is not None else "manual"
    tail = f"-{day}-{digest}-t{int(try_number)}"
    head = f"lh-{slug}"[: MAX_NAME_LENGTH - len(tail)].rstrip("-")
    return head + tail


def interval_days(start: datetime | None, end: datetime | None) -> tuple[date, date]:
    """The days a data interval covers, as the stages take them: ``--start`` is the day the
    interval starts on, ``--end`` the day it ends on (exclusive), at least one day later."""
    if start is None or end is None:
        raise DeploymentError(
            "this DAG processes one data interval per run, but the run has none: trigger it "
            "with a logical date (airflow dags trigger --logical-date ...) or backfill it"
        )
    first, last = start.date(), end.date()
    return first, max(last, first + timedelta(days=1))


class Deployment:
    """The ``lakehouse`` template macro: ``{{ lakehouse.namespace }}``, ..."""

    @property
    def namespace(self) -> str:
        return _env("LAKEHOUSE_K8S_NAMESPACE", "lakehouse")

    @property
    def release(self) -> str:
        return _env("LAKEHOUSE_K8S_RELEASE", "lakehouse")

    @property
    def fullname(self) -> str:
        """The chart's fullname: the release name, plus "-lakehouse" unless it contains it."""
        release = self.release
        return release if "lakehouse" in release else f"{release}-lakehouse"

    @property
    def settings_configmap(self) -> str:
        return f"{self.fullname}-settings"

    @property
    def credentials_secret(self) -> str:
        return _env("LAKEHOUSE_SECRET", f"{self.fullname}-credentials")

    @property
    def spark_service_account(self) -> str:
        return _env("LAKEHOUSE_SPARK_SERVICE_ACCOUNT", f"{self.release}-spark-operator-spark")

    @property
    def image_tag(self) -> str:
        """The project version, the tag `make images` gives; only when no image is set."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("iot-lakehouse")
        except PackageNotFoundError:
            raise DeploymentError(
                "the worker has no LAKEHOUSE_SPARK_IMAGE / LAKEHOUSE_PYTHON_IMAGE and the "
                "project is not installed to name its version: set both (the chart does)"
            ) from None

    def _image(self, variable: str, name: str) -> str:
        # The image from the environment; the version lookup only when it is missing (the
        # airflow image carries the project on PYTHONPATH, without package metadata).
        return _env(variable, "") or f"lakehouse/{name}:{self.image_tag}"

    @property
    def spark_image(self) -> str:
        return self._image("LAKEHOUSE_SPARK_IMAGE", "spark")

    @property
    def python_image(self) -> str:
        return self._image("LAKEHOUSE_PYTHON_IMAGE", "python")

    @property
    def image_pull_policy(self) -> str:
        return _env("LAKEHOUSE_IMAGE_PULL_POLICY", "IfNotPresent")

    @property
    def spark_core_request(self) -> str:
        return cpu_request("LAKEHOUSE_SPARK_CORE_REQUEST", "500m")

    @property
    def stage_cpu_request(self) -> str:
        return cpu_request("LAKEHOUSE_STAGE_CPU_REQUEST", "250m")

    @property
    def spark_version(self) -> str:
        from lakehouse.versions import versions

        return versions()["SPARK_VERSION"]

    def name(
        self, dag_id: str, task_id: str, run_id: str, try_number: int, logical_date: Any
    ) -> str:
        return k8s_name(dag_id, task_id, run_id, try_number, logical_date)

    def stage_arguments(
        self, start: datetime | None, end: datetime | None, run_id: str, extra: Any = ()
    ) -> list[str]:
        """``--start D --end D --run-id X`` (what every stage's main(argv) takes) + ``extra``."""
        first, last = interval_days(start, end)
        args = ["--start", first.isoformat(), "--end", last.isoformat(), "--run-id", run_id]
        return args + [str(a) for a in extra]

    def main_file(self, module: str) -> str:
        """The ``local://`` main file of a Spark stage module inside the spark image."""
        return f"local://{APP_ROOT}/{module.replace('.', '/')}.py"

    def spark_conf(self) -> dict[str, str]:
        """The lakehouse's cluster sparkConf (``spark_apps.session.spark_conf(cluster=True)``)
        from the worker's lakehouse settings, plus the driver's log4j file inside the image."""
        from lakehouse.settings import load_settings
        from spark_apps import session

        settings = load_settings()
        if not (settings.uses_s3 and settings.uses_postgres):
            raise DeploymentError(
                "the worker's lakehouse settings point at local storage or a local catalog "
                f"(LAKEHOUSE_WAREHOUSE_URI={settings.warehouse_uri!r}, LAKEHOUSE_CATALOG_URI="
                f"{settings.catalog_uri!r}): give the Airflow pods the lakehouse ConfigMap "
                "with envFrom"
            )
        log4j = f"{APP_ROOT}/spark_apps/{session.LOG4J2_CONFIG.name}"
        return {
            **session.spark_conf(settings, cluster=True),
            "spark.driver.extraJavaOptions": session.log4j_java_option(log4j),
        }


DEPLOYMENT = Deployment()
