"""The spark image's `driver` command started as the Spark Operator starts a driver pod (the
pod's /opt/spark/conf holds spark.properties, handed to spark-submit by path) maps the image's
class archive (AppCDS) into the driver JVM: the classes a stage loads come from the archive,
not from their jars."""

from __future__ import annotations

from pathlib import Path

from conftest import SPARK
from docker_tools import Network

PROBE = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("probe rows", spark.range(5).count(), flush=True)
spark.stop()
"""
ARCHIVED = "source: shared objects file (top)"
# The JVM's class-loading log goes to a file on a mounted directory, not to stdout: tens of
# thousands of lines through `docker run`'s attached stdout could lose the stream's tail (seen:
# the probe's own line missing from a run that exited 0).
LOG_DIR = "/var/log/probe"


def run_driver(network: Network, conf: Path, java_options: str, logs: Path):
    """The driver pod's command and its mounted conf directory, with ``java_options``;
    ``logs`` is mounted writable at LOG_DIR."""
    conf.mkdir()
    (conf / "spark.properties").write_text(
        "spark.master=local[1]\n"
        "spark.ui.enabled=false\n"
        f"spark.driver.extraJavaOptions={java_options}\n"
    )
    (conf / "probe.py").write_text(PROBE)
    for path in (conf, *conf.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    logs.mkdir()
    logs.chmod(0o777)  # the driver's uid 185 writes here
    return network.run(
        "spark",
        ["driver", "--properties-file", "/opt/spark/conf/spark.properties",
         "local:///opt/spark/conf/probe.py"],
        hardening=SPARK,
        env={"SPARK_DRIVER_BIND_ADDRESS": "127.0.0.1", "SPARK_CONF_DIR": "/opt/spark/conf"},
        extra=["--volume", f"{conf}:/opt/spark/conf:ro", "--volume", f"{logs}:{LOG_DIR}"],
        timeout=300,
    )  # fmt: skip


def test_driver_loads_spark_from_the_class_archive(network: Network, tmp_path: Path):
    # -Xshare:on: a JVM that cannot map the archive refuses to start instead of carrying on.
    logs = tmp_path / "logs"
    java_options = f"-Xshare:on -Xlog:class+load=info:file={LOG_DIR}/classes.log"
    result = run_driver(network, tmp_path / "conf", java_options, logs)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "probe rows 5" in output, output[-4000:]
    loaded = [
        line for line in (logs / "classes.log").read_text().splitlines() if "][class,load]" in line
    ]
    session = [line for line in loaded if " org.apache.spark.sql.SparkSession " in line]
    assert session, loaded[-20:]
    assert ARCHIVED in session[0], session
    archived = sum(ARCHIVED in line for line in loaded)
    assert archived > len(loaded) / 2, f"only {archived} of {len(loaded)} classes archived"
