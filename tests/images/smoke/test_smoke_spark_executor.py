"""The spark image's `executor` command, with the environment Spark's Kubernetes backend gives an
executor pod, registers with a real driver and runs its Python tasks.

Without a cluster, the driver is a standalone-mode application (its scheduler is the same
CoarseGrainedSchedulerBackend a Kubernetes driver runs) on a standalone master that has no
workers: the only executor it can ever get is the one this test starts through the entrypoint.
The tasks report the host they ran on, so a job that finishes proves the registration."""

from __future__ import annotations

import json

from conftest import SPARK
from docker_tools import Network, json_lines, wait_until

DRIVER = """
import json, socket
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("spark://spark-master:7077").appName("executor-smoke")
    .config("spark.driver.host", "spark-driver").config("spark.driver.bindAddress", "0.0.0.0")
    .config("spark.driver.port", "7078").config("spark.blockManager.port", "7079")
    .config("spark.ui.enabled", "false").getOrCreate())
sc = spark.sparkContext
# What a Kubernetes driver hands its executors as SPARK_JAVA_OPT_<n> (Spark adds the JVM module
# options Java 17 needs to spark.executor.extraJavaOptions itself).
print(json.dumps({"executor_java_options": sc.getConf().get("spark.executor.extraJavaOptions")}),
      flush=True)
hosts = sc.parallelize(range(4), 4).map(lambda _: socket.gethostname()).distinct().collect()
total = sc.parallelize(range(1000), 4).map(lambda x: x * 2).sum()
print(json.dumps({"hosts": sorted(hosts), "total": total}))
spark.stop()
"""


def test_executor_registers_with_a_driver_and_runs_its_tasks(network: Network):
    master = network.start(
        "spark", ["spark-class", "org.apache.spark.deploy.master.Master", "--host", "spark-master",
                  "--port", "7077", "--webui-port", "8081"],
        alias="spark-master", hardening=SPARK,
    )  # fmt: skip
    wait_until(lambda: "Starting Spark master" in master.logs(), "master up", 120, master.logs)
    driver = network.start(
        "spark", ["python", "-c", DRIVER], alias="spark-driver", hardening=SPARK,
        env={"HOME": "/tmp"},
    )  # fmt: skip
    wait_until(
        lambda: "executor_java_options" in driver.logs() or not driver.running(),
        "the driver's context up",
        180,
        driver.logs,
    )
    (options,) = [line for line in json_lines(driver.logs()) if "executor_java_options" in line]
    java_opts = {
        f"SPARK_JAVA_OPT_{index}": option
        for index, option in enumerate(
            ["-Dspark.driver.port=7078", *options["executor_java_options"].split()]
        )
    }
    executor = network.start(
        "spark", ["executor"], alias="spark-executor", hardening=SPARK,
        env={
            "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@spark-driver:7078",
            "SPARK_EXECUTOR_ID": "1",
            "SPARK_EXECUTOR_CORES": "1",
            "SPARK_EXECUTOR_MEMORY": "512m",
            "SPARK_APPLICATION_ID": "executor-smoke",
            "SPARK_EXECUTOR_POD_IP": "spark-executor",
            "SPARK_EXECUTOR_POD_NAME": "spark-executor",
            "SPARK_RESOURCE_PROFILE_ID": "0",
            **java_opts,
        },
    )  # fmt: skip
    wait_until(lambda: not driver.running(), "the driver's job finished", 300, driver.logs)
    state = driver.state()
    output = driver.logs()
    assert state["ExitCode"] == 0, output[-3000:] + "\n--- executor:\n" + executor.logs()[-3000:]
    (result,) = [line for line in json_lines(output) if "hosts" in line]
    assert result == {"hosts": ["spark-executor"], "total": 999000}, json.dumps(result)
    assert "Successfully registered with driver" in executor.logs()


def test_executor_without_its_contract_fails_naming_the_variable(network: Network):
    result = network.run("spark", ["executor"], hardening=SPARK, timeout=60)
    assert result.returncode == 64
    assert "SPARK_DRIVER_URL is not set" in result.stderr
