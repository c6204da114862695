"""The rendered PostgreSQL init script, run twice against a real local PostgreSQL server.

Proves what the init Job does in the cluster: roles and databases are created once, a second
run changes nothing and fails nothing, role passwords (quotes included) work for a password
login, and the superuser password is required over TCP (scram-sha-256, as in the chart).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROLES = {
    "CATALOG": ("iceberg_catalog", "iceberg", "cat'pw;--x"),
    "MLFLOW": ("mlflow", "mlflow", "mlflow-pw"),
    "AIRFLOW": ("airflow", "airflow", "airflow-pw"),
}
SUPERUSER_PASSWORD = "super-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: use the postgres account there."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def init_files(
    default_docs: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    (cm,) = [
        d
        for d in default_docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lakehouse-postgres-init"
    ]
    folder = tmp_path_factory.mktemp("pginit")
    for name, text in cm["data"].items():
        (folder / name).write_text(text.replace("/init/", f"{folder}/"))
    return folder


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, str]]:
    for tool in ("initdb", "pg_ctl", "psql"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian package postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    # Not under pytest's tmp folder: that one is private to the test user (0700), and the
    # server may run as the postgres account.
    base = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    base.chmod(0o777)
    pwfile = base / "pw"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    pwfile.chmod(0o644)
    data, port = base / "data", _free_port()
    run = lambda cmd: subprocess.run(  # noqa: E731
        _as_server_user(cmd), check=True, capture_output=True, text=True, cwd=base
    )
    run(["initdb", "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
         "--auth-host=scram-sha-256", "--auth-local=trust"])  # fmt: skip
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    run(["pg_ctl", "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"])
    try:
        yield {"PGHOST": "127.0.0.1", "PGPORT": str(port)}
    finally:
        run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def run_init(init_files: Path, server: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **server, "PGUSER": "postgres", "PGDATABASE": "postgres",
           "PGPASSWORD": SUPERUSER_PASSWORD}  # fmt: skip
    for prefix, (db, user, password) in ROLES.items():
        env |= {f"{prefix}_DB": db, f"{prefix}_USER": user, f"{prefix}_PASSWORD": password}
    return subprocess.run(
        ["sh", str(init_files / "init.sh")], env=env, capture_output=True, text=True, check=False
    )


def test_init_script_is_idempotent_on_real_postgres(
    init_files: Path, server: dict[str, str]
) -> None:
    for _ in range(2):
        proc = run_init(init_files, server)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count(": ok") == 3
    for db, user, password in ROLES.values():
        env = {**os.environ, **server, "PGUSER": user, "PGDATABASE": db, "PGPASSWORD": password}
        out = subprocess.run(
            ["psql", "-X", "-Atc", "select current_user, current_database()"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert out == f"{user}|{db}"


def test_wrong_superuser_password_is_refused(init_files: Path, server: dict[str, str]) -> None:
    env = {**os.environ, **server, "PGUSER": "postgres", "PGPASSWORD": "wrong"}
    proc = subprocess.run(
        ["psql", "-X", "-Atc", "select 1"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr
