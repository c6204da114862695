"""Every SparkApplication the DAGs would submit for a sample logical date, rendered through
Airflow's templating and the operator's own preparation, against the pinned operator's CRD."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from cluster_contract import strict
from dag_tools import ROOT, SAMPLE_RUN_ID
from script_modules import load_module

from lakehouse.versions import versions

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# sparkConf keys the operator's admission webhook rejects (internal/webhook/sparkconf_validator.go).
DENIED_CONF = {
    "spark.master",
    "spark.kubernetes.driver.master",
    "spark.kubernetes.container.image",
    "spark.kubernetes.driver.container.image",
    "spark.kubernetes.executor.container.image",
    "spark.kubernetes.authenticate.driver.serviceAccountName",
    "spark.kubernetes.authenticate.executor.serviceAccountName",
}

# Keys of an embedded session only: in the cluster the jars are in the image, the driver's size
# is the driver block's and it binds to its pod address.
EMBEDDED_ONLY_CONF = {
    "spark.jars.packages",
    "spark.jars.excludes",
    "spark.jars.ivy",
    "spark.driver.memory",
    "spark.driver.bindAddress",
    "spark.driver.host",
}


def spark_tasks(dagbag: Any) -> list[Any]:
    from lakehouse_dags.operators import LakehouseSparkOperator

    return [
        t
        for dag_id in sorted(dagbag.dag_ids)
        for t in dagbag.dags[dag_id].tasks
        if isinstance(t, LakehouseSparkOperator)
    ]


@pytest.fixture(scope="module")
def validator(sparkapplication_crd: dict[str, Any]) -> Any:
    import jsonschema

    (version,) = [v for v in sparkapplication_crd["spec"]["versions"] if v["name"] == "v1beta2"]
    assert version["served"]
    assert version["storage"]
    schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def applications(
    dagbag: Any, render_spark: Callable[..., dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    return {f"{t.dag_id}.{t.task_id}": render_spark(t) for t in spark_tasks(dagbag)}


def test_every_spark_stage_has_an_application(applications: dict[str, Any]) -> None:
    assert set(applications) == {
        "lakehouse_end_to_end.bronze",
        "lakehouse_end_to_end.silver",
        "lakehouse_end_to_end.gold",
        "lakehouse_maintenance.delta_maintenance",
        "lakehouse_maintenance.iceberg_maintenance",
    }


def without_provider_spec_labels(app: dict[str, Any]) -> dict[str, Any]:
    """The body minus ``spec.labels``, which the provider's reattach logic (cncf-kubernetes
    10.25.0, SparkKubernetesOperator._setup_spark_configuration) adds although the CRD has no
    such field: the API server prunes it; driver and executor labels are the ones that count."""
    app = copy.deepcopy(app)
    labels = app["spec"].pop("labels", None)
    assert labels is None or labels.items() <= app["spec"]["driver"]["labels"].items()
    return app


def test_applications_validate_against_the_crd_schema(
    applications: dict[str, Any], validator: Any
) -> None:
    errors = [
        f"{key}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for key, app in applications.items()
        for e in validator.iter_errors(without_provider_spec_labels(app))
    ]
    assert not errors, "\n".join(errors)


def test_metadata_names_and_labels_are_valid(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        meta = app["metadata"]
        # The webhook wants a DNS-1035 label; "<name>-driver" and "<name>-ui-svc" must fit 63.
        assert DNS_1035.match(meta["name"]), key
        assert len(meta["name"]) <= 52, key
        assert meta["namespace"] == "lakehouse"
        for where in (meta, app["spec"]["driver"], app["spec"]["executor"]):
            for k, v in where["labels"].items():
                assert isinstance(v, str), (key, k, v)
                assert len(v) <= 63, (key, k, v)
                assert LABEL_VALUE.match(v), (key, k, v)


def test_no_conf_the_operator_manages_or_embedded_only(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        conf = app["spec"]["sparkConf"]
        assert not DENIED_CONF & set(conf), key
        assert not EMBEDDED_ONLY_CONF & set(conf), key
        # The driver logs through the image's copy of spark_apps/log4j2.properties; driver and
        # executor JVMs compile with C1 only (LAKEHOUSE_SPARK_QUICK_JIT's default).
        assert conf["spark.driver.extraJavaOptions"].split() == [
            "-Dlog4j2.configurationFile=file:/opt/lakehouse/spark_apps/log4j2.properties",
            "-XX:TieredStopAtLevel=1",
        ], key
        assert conf["spark.executor.extraJavaOptions"] == "-XX:TieredStopAtLevel=1", key
        assert all(isinstance(v, str) for v in conf.values())
        # Credentials never appear in a manifest.
        assert not [k for k in conf if "password" in k.lower() or "secret" in k.lower()], key
        assert str(ROOT) not in str(conf), f"{key}: a path of this checkout leaked into sparkConf"
        assert conf["spark.sql.catalog.lakehouse.uri"].startswith("jdbc:postgresql://")
        assert conf["spark.sql.catalog.lakehouse.warehouse"].startswith("s3a://")


def test_image_version_and_main_file(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        spec = app["spec"]
        assert spec["sparkVersion"] == versions()["SPARK_VERSION"], key
        assert spec["image"].startswith("lakehouse/spark:")
        assert spec["type"] == "Python"
        assert spec["mode"] == "cluster"
        assert spec["mainApplicationFile"].startswith("local:///opt/lakehouse/")
        assert spec["restartPolicy"] == {"type": "Never"}
        assert spec["timeToLiveSeconds"] > 0


def test_interval_is_passed(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        args = app["spec"]["arguments"]
        assert args[:6] == [
            "--start", "2026-01-05", "--end", "2026-01-06", "--run-id", SAMPLE_RUN_ID,
        ], key  # fmt: skip


def test_env_from_settings_and_credentials(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        for role in ("driver", "executor"):
            spec = app["spec"][role]
            assert spec["envFrom"] == [{"configMapRef": {"name": "lakehouse-settings"}}], key
            refs = {
                e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["env"] if "valueFrom" in e
            }
            assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(refs), (key, role)
            assert {r["name"] for r in refs.values()} == {"lakehouse-credentials"}
            # The operator's own marker env, added for every application.
            assert any(e["name"] == "SPARK_APPLICATION_NAME" for e in spec["env"])
        driver_env = {e["name"] for e in app["spec"]["driver"]["env"]}
        assert {"LAKEHOUSE_CATALOG_USER", "LAKEHOUSE_CATALOG_PASSWORD"} <= driver_env
        # Executors only move data files: no catalog role (the driver commits, takes the lock).
        executor_env = {e["name"] for e in app["spec"]["executor"]["env"]}
        assert not {"LAKEHOUSE_CATALOG_USER", "LAKEHOUSE_CATALOG_PASSWORD"} & executor_env
        # The driver keeps the master spark-submit gives it (lakehouse.settings._spark_master).
        assert "LAKEHOUSE_SPARK_MASTER" not in driver_env
        assert app["spec"]["driver"]["serviceAccount"] == "lakehouse-spark-operator-spark"


def test_task_labels_let_the_operator_reattach(applications: dict[str, Any]) -> None:
    for key, app in applications.items():
        for role in ("driver", "executor"):
            labels = app["spec"][role]["labels"]
            assert labels["task_id"] == key.split(".")[1]
            assert labels["try_number"] == "1"
            assert labels["lakehouse/object-store-client"] == "true"
        assert app["spec"]["driver"]["labels"]["lakehouse/postgres-client"] == "true", key
        assert "lakehouse/postgres-client" not in app["spec"]["executor"]["labels"], key


def _manifest_tools() -> Any:
    return load_module("tests/manifests/manifest_tools.py")


def test_sizing_matches_the_footprint_budget(applications: dict[str, Any]) -> None:
    """The manifest tier reserves one driver and one executor in the footprint budget; the
    applications request exactly that (requests = coreRequest, memory * (1 + overhead))."""
    tools = _manifest_tools()
    reserved = {
        "driver": tools.RESERVED["spark-driver (reserved)"],
        "executor": tools.RESERVED["spark-executor (reserved)"],
    }
    for key, app in applications.items():
        spec = app["spec"]
        factor = 1 + float(spec["memoryOverheadFactor"])
        assert spec["executor"]["instances"] == 1
        for role, (cpu, memory) in reserved.items():
            heap = tools.memory(spec[role]["memory"].replace("g", "Gi").replace("m", "Mi"))
            assert tools.cpu(spec[role]["coreRequest"]) == tools.cpu(cpu), (key, role)
            assert abs(heap * factor - tools.memory(memory)) < 2**20, (key, role)


def test_names_are_unique_per_run_task_and_try(
    dagbag: Any, render_spark: Callable[..., dict[str, Any]], cluster_env: dict[str, str]
) -> None:
    names = {}
    tasks = spark_tasks(dagbag)
    for task in tasks:
        for run_id in (SAMPLE_RUN_ID, "manual__2026-01-05T02:00:00+00:00"):
            for try_number in (1, 2, 3):
                body = render_spark(task, run_id=run_id, try_number=try_number)
                names[(task.dag_id, task.task_id, run_id, try_number)] = body["metadata"]["name"]
    assert len(set(names.values())) == len(names) == len(tasks) * 6
    # The same try renders the same name (a re-render never orphans an application).
    again = render_spark(tasks[0], run_id=SAMPLE_RUN_ID, try_number=2)
    assert again["metadata"]["name"] == names[(tasks[0].dag_id, tasks[0].task_id, SAMPLE_RUN_ID, 2)]


def test_rendering_without_cluster_settings_fails_clearly(
    dagbag: Any, render_spark: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowException
    from lakehouse_dags.deployment import DeploymentError

    for key in ("LAKEHOUSE_WAREHOUSE_URI", "LAKEHOUSE_RAW_URI", "LAKEHOUSE_CATALOG_URI"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises((DeploymentError, AirflowException), match="lakehouse ConfigMap"):
        render_spark(spark_tasks(dagbag)[0])


def test_strict_schema_rejects_misspelled_and_mistyped_fields(
    applications: dict[str, Any], validator: Any
) -> None:
    app = without_provider_spec_labels(applications["lakehouse_end_to_end.bronze"])
    app["spec"]["driver"]["memmory"] = "1g"
    app["spec"]["executor"]["instances"] = "one"
    messages = sorted(e.message for e in validator.iter_errors(app))
    assert len(messages) == 2
    assert "memmory" in messages[0] + messages[1]
