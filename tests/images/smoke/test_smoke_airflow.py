"""The airflow image: the DAG folder parses with zero import errors inside the image (the
project on PYTHONPATH, Airflow and its providers from uv.lock), and `airflow db migrate` creates
Airflow's schema on the postgres image, as the chart's migration Job does."""

from __future__ import annotations

import json

from conftest import AIRFLOW, Platform

# Airflow's config file under /tmp (the chart mounts its own airflow.cfg read-only).
AIRFLOW_ENV = {"AIRFLOW_HOME": "/opt/airflow", "AIRFLOW_CONFIG": "/tmp/airflow.cfg"}

# The DAG processor parses a bundle with its folder on sys.path (BundleDagBag), which is how the
# DAGs import their lakehouse_dags package.
PARSE = """
import json
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder="/opt/airflow/dags", bundle_path=Path("/opt/airflow/dags"))
errors = {path: str(error) for path, error in bag.import_errors.items()}
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": errors}))
"""


def test_dag_folder_imports_with_no_errors_in_the_image(platform: Platform):
    result = platform.network.run(
        "airflow", ["python", "-c", PARSE], hardening=AIRFLOW,
        env={**platform.settings, **AIRFLOW_ENV}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert "lakehouse_end_to_end" in parsed["dags"]


def test_db_migrate_creates_airflows_schema_on_the_postgres_image(platform: Platform):
    env = {
        **AIRFLOW_ENV,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres:5432/airflow",
        "PGUSER": "airflow",
        "PGPASSWORD": platform.airflow_db_password,
    }
    migrate = platform.network.run(
        "airflow", ["airflow", "db", "migrate"], hardening=AIRFLOW, env=env, timeout=600
    )
    assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-3000:]
    check = platform.network.run(
        "airflow", ["airflow", "db", "check-migrations", "--migration-wait-timeout", "10"],
        hardening=AIRFLOW, env=env, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
