"""Everything that depends on the deployment, resolved at render time inside the worker.

Nothing here runs at import: the DAG files only reference ``{{ lakehouse.* }}`` in templates, so
parsing a DAG reads no file, no environment and no network.

Every name, Secret key and client label a stage pod needs comes from the chart's pipeline
contract (``charts/lakehouse/templates/common/pipeline-configmap.yaml``), which the Airflow pods
get as ``LAKEHOUSE_K8S_DEPLOYMENT`` (JSON): nothing here rebuilds a release's object names, so a
``fullnameOverride``, custom Secret keys or an ``existingSecret`` reach the pods as rendered.
A stage pod gets exactly the credentials and labels of the services its stage declares
(``lakehouse.pipeline.Stage.services``).

The Spark version comes from the version matrix (versions.env) through ``lakehouse.versions``;
the sparkConf from ``spark_apps.session.spark_conf`` on the worker's lakehouse settings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable
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


CONTRACT_VARIABLE = "LAKEHOUSE_K8S_DEPLOYMENT"
# The contract's keys the templates read; a contract without one fails the render naming it.
CONTRACT_KEYS = (
    "namespace", "settingsConfigMap", "sparkServiceAccount", "sparkImage", "pythonImage",
    "imagePullPolicy", "sparkCoreRequest", "stageCpuRequest", "services",
)  # fmt: skip
# A Spark executor only reads and writes data files; the driver commits and takes the lock.
EXECUTOR_SERVICES = ("objectStore",)


def parse_contract(text: str) -> dict[str, Any]:
    """The chart's pipeline contract from its JSON, checked for what the templates read."""
    try:
        contract = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeploymentError(f"{CONTRACT_VARIABLE} is not JSON: {error}") from None
    if not isinstance(contract, dict):
        raise DeploymentError(f"{CONTRACT_VARIABLE} must be a JSON object")
    missing = [k for k in CONTRACT_KEYS if k not in contract]
    if missing:
        raise DeploymentError(f"{CONTRACT_VARIABLE} lacks {missing}: is the chart older?")
    for key in ("sparkCoreRequest", "stageCpuRequest"):
        if not _CPU_QUANTITY.match(str(contract[key])):
            raise DeploymentError(
                f"{CONTRACT_VARIABLE}: {key}={contract[key]!r} is not a CPU quantity (e.g. 250m)"
            )
    return contract


@functools.lru_cache(maxsize=4)
def _parsed_contract(text: str) -> dict[str, Any]:
    # One parse per contract text, not one per template expression that reads it.
    return parse_contract(text)


def secret_env(contract: dict[str, Any], services: Iterable[str]) -> list[dict[str, Any]]:
    """The env entries read from Secrets for ``services``, in the contract's order."""
    known = contract["services"]
    unknown = [s for s in services if s not in known]
    if unknown:
        raise DeploymentError(f"the chart's pipeline contract has no service {unknown}")
    return [
        {"name": e["name"], "valueFrom": {"secretKeyRef": {"name": e["secret"], "key": e["key"]}}}
        for name in services
        for e in known[name]["secretEnv"]
    ]


def client_labels(contract: dict[str, Any], services: Iterable[str]) -> dict[str, str]:
    """The NetworkPolicy client labels of ``services`` ("lakehouse/postgres-client": "true")."""
    return {contract["services"][name]["clientLabel"]: "true" for name in services}


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
    """The ``lakehouse`` template macro: ``{{ lakehouse.namespace }}``, ...

    The contract is read from the worker's environment when a template asks (or given, for
    `make ingest`, which renders the stage pod outside Airflow)."""

    def __init__(self, contract: dict[str, Any] | None = None) -> None:
        self._contract = contract

    @property
    def contract(self) -> dict[str, Any]:
        if self._contract is not None:
            return self._contract
        text = os.environ.get(CONTRACT_VARIABLE, "").strip()
        if not text:
            raise DeploymentError(
                f"the worker has no {CONTRACT_VARIABLE}: the chart gives every Airflow pod its "
                "pipeline contract (ConfigMap <fullname>-pipeline, key deployment.json)"
            )
        return _parsed_contract(text)

    @property
    def namespace(self) -> str:
        return self.contract["namespace"]

    @property
    def settings_configmap(self) -> str:
        return self.contract["settingsConfigMap"]

    @property
    def spark_service_account(self) -> str:
        return self.contract["sparkServiceAccount"]

    @property
    def spark_image(self) -> str:
        return self.contract["sparkImage"]

    @property
    def python_image(self) -> str:
        return self.contract["pythonImage"]

    @property
    def image_pull_policy(self) -> str:
        return self.contract["imagePullPolicy"]

    @property
    def spark_core_request(self) -> str:
        return str(self.contract["sparkCoreRequest"])

    @property
    def stage_cpu_request(self) -> str:
        return str(self.contract["stageCpuRequest"])

    def secret_env(self, services: Iterable[str]) -> list[dict[str, Any]]:
        return secret_env(self.contract, services)

    def client_labels(self, services: Iterable[str]) -> dict[str, str]:
        return client_labels(self.contract, services)

    def executor_services(self, services: Iterable[str]) -> list[str]:
        return [s for s in services if s in EXECUTOR_SERVICES]

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
        from the worker's lakehouse settings, plus the driver's JVM options: its log4j file
        inside the image and the stage JVM options (C1 only, ``LAKEHOUSE_SPARK_QUICK_JIT``)."""
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
        driver_options = [session.log4j_java_option(log4j), *session.stage_jvm_options(settings)]
        return {
            **session.spark_conf(settings, cluster=True),
            "spark.driver.extraJavaOptions": " ".join(driver_options),
        }


DEPLOYMENT = Deployment()
