"""The footprint's reserved workloads come from the DAG templates, sized by Spark's own rules."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from manifest_tools import PROFILES, footprint, format_footprint, load_docs, within
from reserved_workloads import jvm_mib, spark_pod_requests

MIB = 2**20


def app(driver: dict[str, Any], conf: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"spec": {"driver": driver, "executor": driver, "sparkConf": conf or {}, **spec}}


@pytest.mark.parametrize(
    ("size", "mib"), [("512m", 512), ("1g", 1024), ("2048", 2048), ("1t", 2**20), ("4G", 4096)]
)
def test_jvm_sizes(size: str, mib: int) -> None:
    assert jvm_mib(size) == mib


def test_jvm_size_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a Spark memory size"):
        jvm_mib("1.5g")


@pytest.mark.parametrize(
    ("application", "expected"),
    [
        # The DAGs' sizing: 1g heap, factor 0.4 -> 1024 + 409 MiB; coreRequest wins over cores.
        (app({"cores": 1, "coreRequest": "500m", "memory": "1g"}, memoryOverheadFactor="0.4"),
         (Fraction(1, 2), 1433 * MIB)),
        # Default factor 0.1 of 2g is under the 384 MiB floor; no coreRequest: cores.
        (app({"cores": 2, "memory": "2g"}), (Fraction(2), (2048 + 384) * MIB)),
        # 0.1 of 8g is above the floor.
        (app({"cores": 1, "memory": "8g"}), (Fraction(1), (8192 + 819) * MIB)),
        # An explicit overhead replaces the factor; PySpark's worker memory comes on top.
        (app({"cores": 1, "memory": "1g", "memoryOverhead": "512m"},
             {"spark.driver.pyspark.memory": "256m"}),
         (Fraction(1), (1024 + 512 + 256) * MIB)),
        # Values only in sparkConf.
        (app({}, {"spark.driver.memory": "3g", "spark.kubernetes.driver.request.cores": "250m",
                  "spark.driver.memoryOverheadFactor": "0.2"}),
         (Fraction(1, 4), (3072 + 614) * MIB)),
    ],
)  # fmt: skip
def test_spark_pod_requests_follow_spark_rules(application: dict, expected: tuple) -> None:
    assert spark_pod_requests(application, "driver") == expected


def test_reserved_rows_are_the_rendered_dag_workloads(default_docs: list[dict[str, Any]]) -> None:
    """dags/templates ask 500m / 1g (+0.4) per driver and executor, 250m / 1Gi per stage pod."""
    rows = footprint(default_docs)
    assert rows["spark-driver (reserved)"] == (Fraction(1, 2), 1433 * MIB)
    assert rows["spark-executor (reserved)"] == (Fraction(1, 2), 1433 * MIB)
    assert rows["training-pod (reserved)"] == (Fraction(1, 4), 1024 * MIB)


def test_small_profile_sizes_the_dag_workloads_from_the_chart(renderer: Any) -> None:
    """values-small.yaml's pipelineResources reach the pods the DAGs render (through the
    worker pods' LAKEHOUSE_*_REQUEST), memory untouched."""
    rows = footprint(load_docs(renderer.render(PROFILES["small"].values)))
    assert rows["spark-driver (reserved)"] == (Fraction(1, 5), 1433 * MIB)
    assert rows["spark-executor (reserved)"] == (Fraction(1, 5), 1433 * MIB)
    assert rows["training-pod (reserved)"] == (Fraction(1, 10), 1024 * MIB)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_fits_its_budget(renderer: Any, name: str) -> None:
    profile = PROFILES[name]
    rows = footprint(load_docs(renderer.render(profile.values)))
    assert within(rows, profile), format_footprint(rows, profile)
