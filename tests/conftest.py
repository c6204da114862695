"""Shared fixtures: one SparkSession for the whole test run, on a throwaway LAKEHOUSE_HOME."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest

from lakehouse.settings import Settings, load_settings

# PySpark turns timestamps into naive local datetimes; make "local" mean UTC everywhere.
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("lakehouse")
    return load_settings(
        {
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_DEVICES": "8",
            "LAKEHOUSE_SITES": "2",
            "LAKEHOUSE_READING_SECONDS": "300",
            "LAKEHOUSE_SPARK_DRIVER_MEMORY": "2g",
            "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
        }
    )


@pytest.fixture(scope="session")
def spark(settings: Settings):
    from spark_apps.session import build_session

    session = build_session(settings, app_name="lakehouse-tests")
    yield session
    session.stop()


# The interval every end-to-end test shares: two days, so late events and re-sends cross days.
E2E_START = date(2026, 1, 5)
E2E_END = date(2026, 1, 7)


@pytest.fixture(scope="session")
def pipeline_run(settings: Settings, spark):
    """One full pipeline run (every stage, ML included) over the shared interval; the tests
    of each tier read what it wrote instead of running it again."""
    from lakehouse.runner import run_pipeline, write_summary

    report = run_pipeline(settings, E2E_START, E2E_END, spark=spark)
    return report, write_summary(settings, report)
