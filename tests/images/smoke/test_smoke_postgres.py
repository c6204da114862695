"""The postgres image as the chart runs it: password auth required, data kept across a restart,
no initdb without a superuser password."""

from __future__ import annotations

import secrets

from conftest import POSTGRES, start_postgres
from docker_tools import Network, wait_until


def psql(network: Network, host: str, password: str, sql: str):
    return network.run(
        "postgres",
        ["psql", "-h", host, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
        hardening=POSTGRES,
        env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
        timeout=60,
    )


def test_password_is_required_and_rows_survive_a_restart(network: Network):
    password = secrets.token_hex(16)
    server = start_postgres(network, password, alias="pg-restart")
    wrong = psql(network, "pg-restart", "not-" + password, "select 1")
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr
    created = psql(
        network, "pg-restart", password,
        "create table kept (v text); insert into kept values ('before restart')",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    server.restart()
    wait_until(
        lambda: server.exec("pg_isready", "-h", "127.0.0.1", "-U", "postgres").returncode == 0,
        "postgres ready after its restart",
        90,
        server.logs,
    )
    kept = psql(network, "pg-restart", password, "select v from kept")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == "before restart"
    assert server.logs().count("initialized /var/lib/postgresql/data") == 1


def test_an_empty_volume_without_a_password_is_refused(network: Network):
    result = network.run(
        "postgres",
        hardening=POSTGRES,
        env={"PGDATA": "/var/lib/postgresql/data/pgdata"},
        extra=["--volume", f"{network.volume()}:/var/lib/postgresql/data"],
        timeout=60,
    )
    assert result.returncode != 0
    assert "no superuser password is set" in result.stderr
