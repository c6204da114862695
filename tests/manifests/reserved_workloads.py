"""Requests of the workloads the DAGs start, read from the DAG templates as Airflow renders them.

The footprint budget reserves one Spark application (driver + its executors) and one training
pod next to the chart's own pods. They are not rendered by the chart: this script renders every
SparkApplication and stage pod of the DAGs (tests/dags/dag_tools.py, the same path the DAG tests
take: Airflow's templating plus the operators' own preparation, no cluster) and prints the
largest of each as JSON. It runs in a subprocess of its own because dag_tools configures Airflow
through the process environment; the lakehouse settings come from the caller's environment
(the rendered settings ConfigMap).

    python tests/manifests/reserved_workloads.py
    # last line: {"spark-driver (reserved)": [cpu, bytes], ...}
"""

from __future__ import annotations

import json
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

MIB = 2**20
# Spark on Kubernetes: a pod's memory request is the JVM memory plus an overhead of
# max(factor * memory, 384 MiB) unless memoryOverhead is given (Spark 4.0 defaults).
MIN_OVERHEAD_MIB = 384
DEFAULT_OVERHEAD_FACTOR = Fraction(1, 10)
_JVM_SIZE = re.compile(r"^([0-9]+)([kmgt]?)b?$", re.IGNORECASE)
_JVM_MIB = {"k": Fraction(1, 1024), "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}


def jvm_mib(size: str) -> int:
    """A Spark memory size ("1g", "512m", "1024") in MiB (no suffix means MiB for these keys)."""
    match = _JVM_SIZE.match(str(size).strip())
    if not match:
        raise ValueError(f"not a Spark memory size: {size!r}")
    return int(int(match.group(1)) * _JVM_MIB[match.group(2).lower()])


def spark_pod_requests(app: dict[str, Any], role: str) -> tuple[Fraction, int]:
    """(cpu, memory bytes) one driver or executor pod of a SparkApplication requests."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from manifest_tools import cpu

    spec, block = app["spec"], app["spec"][role]
    conf = spec.get("sparkConf", {})
    cores = block.get("coreRequest") or conf.get(f"spark.kubernetes.{role}.request.cores")
    cores = cores or block.get("cores") or conf.get(f"spark.{role}.cores", 1)
    memory = jvm_mib(block.get("memory") or conf.get(f"spark.{role}.memory", "1g"))
    overhead = block.get("memoryOverhead") or conf.get(f"spark.{role}.memoryOverhead")
    if overhead:
        overhead_mib = jvm_mib(overhead)
    else:
        factor = Fraction(
            spec.get("memoryOverheadFactor")
            or conf.get(f"spark.{role}.memoryOverheadFactor")
            or conf.get("spark.kubernetes.memoryOverheadFactor")
            or DEFAULT_OVERHEAD_FACTOR
        )
        overhead_mib = max(int(factor * memory), MIN_OVERHEAD_MIB)
    pyspark = conf.get(f"spark.{role}.pyspark.memory")
    total = memory + overhead_mib + (jvm_mib(pyspark) if pyspark else 0)
    return cpu(cores), total * MIB


def largest(rows: list[tuple[Fraction, int]]) -> tuple[Fraction, int]:
    """The row that weighs most on the budget: memory first (the scarce one), then CPU."""
    return max(rows, key=lambda r: (r[1], r[0]))


def reserved() -> dict[str, tuple[Fraction, int]]:
    sys.path[:0] = [str(HERE.parent / "dags"), str(HERE), str(HERE.parent)]
    import dag_tools
    from airflow.dag_processing.dagbag import DagBag
    from lakehouse_dags.operators import LakehousePodOperator, LakehouseSparkOperator
    from manifest_tools import pod_requests

    bag = DagBag(dag_folder=str(dag_tools.DAGS), include_examples=False)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    tasks = [t for dag_id in sorted(bag.dag_ids) for t in bag.dags[dag_id].tasks]
    apps = [
        dag_tools.render_spark_application(t)
        for t in tasks
        if isinstance(t, LakehouseSparkOperator)
    ]
    pods = [dag_tools.render_pod(t) for t in tasks if isinstance(t, LakehousePodOperator)]
    if not apps or not pods:
        raise SystemExit(f"found {len(apps)} SparkApplications and {len(pods)} stage pods")
    drivers = [spark_pod_requests(a, "driver") for a in apps]
    # One application's executors together: instances x one executor pod.
    executors = []
    for app in apps:
        c, m = spark_pod_requests(app, "executor")
        n = int(app["spec"]["executor"].get("instances", 1))
        executors.append((c * n, m * n))
    return {
        "spark-driver (reserved)": largest(drivers),
        "spark-executor (reserved)": largest(executors),
        "training-pod (reserved)": largest([pod_requests(p["spec"]) for p in pods]),
    }


def main() -> int:
    rows = reserved()
    # The last line of stdout (Airflow may log to stdout before it).
    print("\n" + json.dumps({k: [str(c), m] for k, (c, m) in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
