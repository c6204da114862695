"""One line naming the server for real client failures against a port where nothing listens
(S3A through Spark is covered by the services tier's outage tests)."""

from __future__ import annotations

import socket

import pytest

from lakehouse.failures import unreachable
from lakehouse.settings import load_settings


@pytest.fixture(scope="module")
def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path, dead_port: int):
    return load_settings(
        {
            "LAKEHOUSE_HOME": str(tmp_path),
            "LAKEHOUSE_S3_ENDPOINT": f"http://127.0.0.1:{dead_port}",
            "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{dead_port + 1}/catalog",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{dead_port + 2}",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
        }
    )


def caught(fn) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    pytest.fail("expected the client to fail")


def test_s3_client_failure_names_the_endpoint(settings, dead_port: int) -> None:
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3", endpoint_url=settings.s3_endpoint, aws_access_key_id="k", aws_secret_access_key="s",
        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )  # fmt: skip
    line = unreachable(caught(lambda: s3.list_buckets()), settings)
    assert line is not None
    assert line.startswith(f"the S3 endpoint 127.0.0.1:{dead_port} (LAKEHOUSE_S3_ENDPOINT)")


def test_catalog_failure_names_the_database(settings, dead_port: int) -> None:
    import psycopg2

    def connect() -> None:
        psycopg2.connect(host="127.0.0.1", port=dead_port + 1, dbname="catalog", connect_timeout=2)

    line = unreachable(caught(connect), settings)
    assert line is not None
    assert f"the catalog database 127.0.0.1:{dead_port + 1} (LAKEHOUSE_CATALOG_URI)" in line
    assert "Connection refused" in line or "connection refused" in line


def test_mlflow_failure_names_the_server(settings, dead_port: int) -> None:
    import requests

    def call() -> None:
        requests.get(f"{settings.mlflow_tracking_uri}/health", timeout=2)

    line = unreachable(caught(call), settings)
    assert line is not None
    assert line.startswith(f"the MLflow server 127.0.0.1:{dead_port + 2} (MLFLOW_TRACKING_URI)")


def test_other_failures_are_not_disguised(settings) -> None:
    assert unreachable(ValueError("column event_ts not found"), settings) is None
    # A refused connection to some other server is not blamed on ours.
    assert unreachable(ConnectionRefusedError("Connection refused: 10.0.0.9:1"), settings) is None
