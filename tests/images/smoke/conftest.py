"""Images tier: the project's images started the way the chart starts them, doing their real jobs
on a private Docker network (`make test-images` starts Docker and builds the images first).

The platform fixture runs the servers the stages need, each from its own image: PostgreSQL
(lakehouse/postgres), SeaweedFS (lakehouse/seaweedfs), MLflow (lakehouse/mlflow), with the
buckets and databases made by lakehouse.bootstrap in lakehouse/python, as the chart's init Jobs
do. Credentials are generated per session and reach containers only through their environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docker_tools import Container, Hardening, Network, docker_answers, wait_until

REQUIRE = os.environ.get("LAKEHOUSE_REQUIRE_DOCKER") == "1"

# The chart's uids and writable paths (charts/lakehouse/templates, dags/templates).
POSTGRES = Hardening("10001:10001", ("/tmp", "/run/postgresql"))
SEAWEEDFS = Hardening("10001:10001", ("/tmp", "/data"))
MLFLOW = Hardening("10001:10001")
PYTHON = Hardening("1000:1000")
SPARK = Hardening("185:185")
AIRFLOW = Hardening("50000:50000", ("/tmp", "/opt/airflow/logs"))

BUCKETS = ("lakehouse-raw", "lakehouse-warehouse", "lakehouse-mlflow")
DAY = "2026-01-05"


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    if docker_answers():
        return
    message = "no Docker engine answers: `make test-images` starts one (scripts/docker/engine.sh)"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    net = Network().create()
    yield net
    net.remove()


def secret() -> str:
    return secrets.token_hex(16)


@dataclass
class Platform:
    network: Network
    postgres: Container
    s3: Container
    mlflow: Container
    credentials: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)
    # Airflow's own database role: not a stage credential.
    airflow_db_password: str = ""

    def stage_env(self, **overrides: str) -> dict[str, str]:
        """What a stage pod gets: the settings ConfigMap plus its Secret keys."""
        return {**self.settings, **self.credentials, **overrides}


def start_postgres(network: Network, password: str, alias: str = "postgres") -> Container:
    container = network.start(
        "postgres",
        alias=alias,
        hardening=POSTGRES,
        env={
            "POSTGRES_PASSWORD": password,
            "PGDATA": "/var/lib/postgresql/data/pgdata",
            "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 --auth-local=trust",
        },
        extra=["--volume", f"{network.volume()}:/var/lib/postgresql/data"],
    )
    wait_until(
        lambda: container.exec("pg_isready", "-h", "127.0.0.1", "-U", "postgres").returncode == 0,
        "postgres ready",
        90,
        container.logs,
    )
    return container


def start_seaweedfs(network: Network, access_key: str, secret_key: str) -> Container:
    return network.start(
        "seaweedfs",
        [
            "server",
            "-dir=/data",
            "-ip=s3",
            "-ip.bind=0.0.0.0",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            "-filer.port=8888",
            "-s3",
            "-s3.port=8333",
            "-s3.port.iceberg=0",
        ],
        alias="s3",
        hardening=SEAWEEDFS,
        env={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
    )


@pytest.fixture(scope="session")
def platform(network: Network) -> Platform:
    credentials = {
        "AWS_ACCESS_KEY_ID": "lakehouse" + secrets.token_hex(4),
        "AWS_SECRET_ACCESS_KEY": secret(),
        "LAKEHOUSE_CATALOG_USER": "iceberg",
        "LAKEHOUSE_CATALOG_PASSWORD": secret(),
    }
    admin_password, mlflow_password = secret(), secret()
    airflow_db_password = secret()
    postgres = start_postgres(network, admin_password)
    s3 = start_seaweedfs(
        network, credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"]
    )
    settings = {
        "LAKEHOUSE_RAW_URI": "s3://lakehouse-raw",
        "LAKEHOUSE_WAREHOUSE_URI": "s3://lakehouse-warehouse",
        "LAKEHOUSE_CATALOG_URI": "jdbc:postgresql://postgres:5432/iceberg_catalog",
        "LAKEHOUSE_CATALOG_NAME": "lakehouse",
        "LAKEHOUSE_S3_ENDPOINT": "http://s3:8333",
        "AWS_REGION": "us-east-1",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
        "LAKEHOUSE_SEED": "42",
        "LAKEHOUSE_DEVICES": "8",
        "LAKEHOUSE_SITES": "2",
        "LAKEHOUSE_READING_SECONDS": "300",
        "LAKEHOUSE_MLFLOW_PREFIX": "smoke",
    }
    # The chart's init Jobs: buckets and databases by lakehouse.bootstrap, in the python image.
    bootstrap = network.run(
        "python",
        ["python", "-m", "lakehouse.bootstrap", "all"],
        hardening=PYTHON,
        env={
            **credentials,
            "LAKEHOUSE_S3_ENDPOINT": settings["LAKEHOUSE_S3_ENDPOINT"],
            "AWS_REGION": "us-east-1",
            "BUCKETS": " ".join(BUCKETS),
            "LAKEHOUSE_INIT_WAIT_SECONDS": "120",
            "PGHOST": "postgres",
            "PGPORT": "5432",
            "PGUSER": "postgres",
            "PGPASSWORD": admin_password,
            "PGDATABASE": "postgres",
            "CATALOG_DB": "iceberg_catalog",
            "CATALOG_USER": "iceberg",
            "CATALOG_PASSWORD": credentials["LAKEHOUSE_CATALOG_PASSWORD"],
            "AIRFLOW_DB": "airflow",
            "AIRFLOW_USER": "airflow",
            "AIRFLOW_PASSWORD": airflow_db_password,
            "MLFLOW_DB": "mlflow",
            "MLFLOW_USER": "mlflow",
            "MLFLOW_PASSWORD": mlflow_password,
        },
        timeout=300,
    )
    assert bootstrap.returncode == 0, bootstrap.stdout + bootstrap.stderr
    mlflow = network.start(
        "mlflow",
        [
            "--host=0.0.0.0",
            "--port=5000",
            "--workers=1",
            "--backend-store-uri=postgresql+psycopg2://mlflow@postgres:5432/mlflow",
            "--serve-artifacts",
            "--artifacts-destination=s3://lakehouse-mlflow",
        ],
        alias="mlflow",
        hardening=MLFLOW,
        env={
            "PGPASSWORD": mlflow_password,
            "AWS_ACCESS_KEY_ID": credentials["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": credentials["AWS_SECRET_ACCESS_KEY"],
            "MLFLOW_S3_ENDPOINT_URL": "http://s3:8333",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_SERVER_ALLOWED_HOSTS": "mlflow:5000,mlflow,localhost:5000",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
    )
    return Platform(network, postgres, s3, mlflow, credentials, settings, airflow_db_password)
