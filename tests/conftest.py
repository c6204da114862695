"""Shared fixtures: one SparkSession for the whole test run, on a throwaway LAKEHOUSE_HOME."""

from __future__ import annotations

import os
import time

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
