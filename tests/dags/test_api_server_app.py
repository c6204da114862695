"""The Airflow API server's application builds with the locked packages.

The DAG tests parse DAGs, which never touches the API server's models; a FastAPI release that
Airflow's execution API cannot build with only showed as api-server and dag-processor pods in
CrashLoopBackOff on the kind cluster. Building the app here catches such a lock in seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_api_server_app_is_created(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    code = "from airflow.api_fastapi.app import create_app; create_app(); print('app ok')"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "app ok" in proc.stdout
