"""Outages of a real server in the middle of a pipeline run.

The run is a subprocess; once the first commit of a chosen stage shows up in S3 the server is
stopped. The stage in flight must fail with an error naming the server's endpoint; after the
server is back, a rerun of the same interval must succeed and leave exactly the tables of a
clean run (lineage columns aside). Only the stages that talk to S3 and the catalog through Spark
run here (ingest, bronze, silver, gold): the ML stages' MLflow path is covered by the e2e tests.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from services_tools import (
    ROOT,
    RUN_TIMEOUT,
    Scenario,
    all_tables,
    make_scenario,
    pipeline_cmd,
    run_pipeline,
    services,
)

from lakehouse.storage import filesystem
from lakehouse.tables import locations

SPARK_STAGES = "ingest,bronze,silver,gold"
# S3A's retry defaults are made for AWS throttling: with the server gone, a stage took 7.4 min
# to give up (measured). The outage runs use a spark-defaults.conf that gives up at once; the
# error and the recovery are the same, only the wait is shorter.
FAIL_FAST = """\
spark.hadoop.fs.s3a.retry.limit 1
spark.hadoop.fs.s3a.retry.interval 100ms
spark.hadoop.fs.s3a.attempts.maximum 1
spark.hadoop.fs.s3a.retry.throttle.limit 1
"""


def fail_fast_spark_conf(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark-defaults.conf").write_text(FAIL_FAST)
    return str(folder)


def first_commit(scenario: Scenario, table_uri: str) -> Callable[[], bool]:
    fs, _ = filesystem(scenario.settings, "s3://")
    key = table_uri.removeprefix("s3://") + "/_delta_log/00000000000000000000.json"

    def seen() -> bool:
        fs.invalidate_cache()
        return bool(fs.exists(key))

    return seen


def run_with_outage(
    scenario: Scenario, server: str, trigger: Callable[[], bool]
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the pipeline, stop ``server`` once ``trigger()`` holds, restart it after the run
    ended. Returns the run and the seconds from the stop to the run's exit."""
    proc = subprocess.Popen(
        pipeline_cmd("--stages", SPARK_STAGES), env=scenario.env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while not trigger():
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(
                    f"run ended before the outage point (rc {proc.returncode}):\n{out[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("the outage point was never reached")
            time.sleep(0.5)
        services("stop", server)
        stopped = time.monotonic()
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
        failed_after = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        services("start", server)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), failed_after


def endpoint(uri: str) -> str:
    parsed = urlparse(uri.removeprefix("jdbc:"))
    return f"{parsed.hostname}:{parsed.port}"


@pytest.mark.parametrize(
    ("server", "after_table", "address_key"),
    [
        # S3 goes away after bronze's first commit: bronze day 2 or silver fails.
        ("s3", "bronze_events", "LAKEHOUSE_S3_ENDPOINT"),
        # The catalog database goes away after silver's first commit: gold fails.
        ("postgres", "silver_events", "LAKEHOUSE_CATALOG_URI"),
    ],
)
def test_outage_fails_naming_the_endpoint_and_rerun_equals_clean_run(
    profile, run_tag, clean, tmp_path, server, after_table, address_key
) -> None:
    scenario = make_scenario(
        profile, run_tag, f"{server}_outage", tmp_path / "home",
        SPARK_CONF_DIR=fail_fast_spark_conf(tmp_path / "spark-conf"),
    )  # fmt: skip
    table_uri = getattr(locations(scenario.settings), after_table)
    proc, failed_after = run_with_outage(scenario, server, first_commit(scenario, table_uri))
    print(f"{server} outage: the run failed {failed_after:.0f} s after the stop")
    assert proc.returncode != 0, proc.stdout[-3000:]
    address = endpoint(profile[address_key])
    assert address in proc.stdout, f"no mention of {address} in:\n{proc.stdout[-3000:]}"

    rerun = run_pipeline(scenario, "--stages", SPARK_STAGES)
    assert rerun.returncode == 0, f"rerun failed:\n{rerun.stdout[-3000:]}\n{rerun.stderr[-3000:]}"
    got = all_tables(scenario.settings, scenario.prefix)
    want = all_tables(clean.settings, clean.prefix)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs from the clean run"
