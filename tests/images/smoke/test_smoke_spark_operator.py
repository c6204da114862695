"""The spark-operator image: the controller binary built from the pinned Go module starts and
reports the chart's version, on the spark image, so spark-submit (which the controller runs for
every SparkApplication) is on its PATH and works as uid 185 with a read-only root."""

from __future__ import annotations

from conftest import SPARK
from docker_tools import Network

from lakehouse.versions import versions


def test_controller_reports_the_pinned_version(network: Network):
    result = network.run("spark-operator", ["version"], hardening=SPARK, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"v{versions()['SPARK_OPERATOR_CHART_VERSION']}" in result.stdout


def test_controller_help_lists_its_subcommands(network: Network):
    result = network.run("spark-operator", ["--help"], hardening=SPARK, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "controller" in result.stdout
    assert "webhook" in result.stdout


def test_spark_submit_is_on_the_path_of_the_controller_image(network: Network):
    result = network.run(
        "spark-operator",
        ["-c", 'command -v spark-submit; echo "$SPARK_HOME"; '
               '"$SPARK_HOME/bin/spark-submit" --version'],
        hardening=SPARK, entrypoint="/bin/bash", timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found, spark_home = result.stdout.splitlines()[:2]
    assert found.endswith("/spark-submit")
    # The controller runs $SPARK_HOME/bin/spark-submit by absolute path.
    assert spark_home == "/opt/spark"
    assert f"version {versions()['SPARK_VERSION']}" in result.stdout + result.stderr


def test_the_controllers_spark_submit_maps_the_class_archive_and_compiles_with_c1(
    network: Network,
):
    # -Xshare:on: a JVM that cannot map the archive refuses to start instead of carrying on.
    # The class-loading log stays in the container (tmpfs): only the lines asked for come out.
    script = (
        'export SPARK_SUBMIT_OPTS="$SPARK_SUBMIT_OPTS -Xshare:on -Xlog:class+load=info '
        '-XX:+PrintFlagsFinal"; '
        '"$SPARK_HOME/bin/spark-submit" --version > /tmp/out 2>&1; rc=$?; '
        'grep -m1 " org.apache.spark.deploy.SparkSubmit " /tmp/out; '
        "grep -m1 -E ' TieredStopAtLevel +=' /tmp/out; "
        'grep -c "\\]\\[class,load\\]" /tmp/out; '
        'grep -c "source: shared objects file (top)" /tmp/out; '
        "test $rc -eq 0 || tail -20 /tmp/out; exit $rc"
    )
    result = network.run(
        "spark-operator", ["-c", script], hardening=SPARK, entrypoint="/bin/bash", timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    submit, tiered, loaded, archived = result.stdout.splitlines()[:4]
    assert "source: shared objects file (top)" in submit, submit
    assert tiered.split("=")[1].split()[0] == "1", tiered
    assert int(archived) > int(loaded) / 2, f"only {archived} of {loaded} classes archived"
