"""Writer locks between processes on the embedded (SQLite catalog) backend: a second writer
waits and says so, gives up with a clear error after the timeout, and a killed holder never
leaves a stale lock. The PostgreSQL backend is exercised by the services tier's concurrent runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from lakehouse.locks import LockTimeoutError, advisory_key, lock_file, lock_name, writer_lock
from lakehouse.runner import run_pipeline
from lakehouse.settings import load_settings

HOLDER = """
import sys, time
from lakehouse.locks import writer_lock
from lakehouse.settings import load_settings
with writer_lock(load_settings({"LAKEHOUSE_HOME": sys.argv[1]}), sys.argv[3]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def start_holder(home: Path, seconds: float, writer: str = "silver") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home), str(seconds), writer],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def settings_for(home: Path, timeout: int = 60):
    return load_settings(
        {"LAKEHOUSE_HOME": str(home), "LAKEHOUSE_LOCK_TIMEOUT_SECONDS": str(timeout)}
    )


def test_a_second_writer_waits_for_the_first_and_says_so(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, 2.0)
    said: list[str] = []
    began = time.monotonic()
    with writer_lock(settings_for(tmp_path), "silver", on_wait=said.append):
        waited = time.monotonic() - began
    holder.wait()
    # The holder kept the lock for 2 s after saying "held".
    assert waited >= 1.5, "the lock was granted while the first writer still held it"
    assert len(said) == 1
    assert "another run holds" in said[0]
    assert "silver" in said[0]


def test_other_stages_do_not_wait(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, 30.0)
    try:
        said: list[str] = []
        with writer_lock(settings_for(tmp_path), "gold", on_wait=said.append):
            assert holder.poll() is None
        assert said == []
    finally:
        holder.kill()
        holder.wait()


def test_ingest_waits_while_bronze_reads_the_raw_day(tmp_path: Path) -> None:
    """Ingest rewrites the raw day that bronze reads, so the runner's ingest must not start
    while another run's bronze holds its lock (and the other way round)."""
    settings = settings_for(tmp_path, timeout=1)
    holder = start_holder(tmp_path, 30.0, writer="bronze")
    said: list[str] = []
    try:
        with pytest.raises(LockTimeoutError, match="raw"):
            run_pipeline(
                settings, date(2026, 1, 5), date(2026, 1, 6), stages=["ingest"], on_wait=said.append
            )
    finally:
        holder.kill()
        holder.wait()
    assert len(said) == 1, said
    assert "raw" in said[0]
    assert not list((tmp_path / "raw").rglob("*.gz")), "ingest wrote while bronze held the lock"
    holder = start_holder(tmp_path, 30.0, writer="ingest")
    try:
        with pytest.raises(LockTimeoutError), writer_lock(settings, "bronze"):
            pytest.fail("bronze started while ingest held the raw day")
    finally:
        holder.kill()
        holder.wait()


def test_waiting_too_long_is_a_clear_error(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, 30.0)
    try:
        with (
            pytest.raises(LockTimeoutError, match="LAKEHOUSE_LOCK_TIMEOUT_SECONDS"),
            writer_lock(settings_for(tmp_path, timeout=1), "silver"),
        ):
            pytest.fail("acquired a lock another process holds")
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, 30.0)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said: list[str] = []
    with writer_lock(settings_for(tmp_path, timeout=1), "silver", on_wait=said.append):
        pass
    assert said == []


def test_lock_identity_follows_the_warehouse_and_the_scope(tmp_path: Path) -> None:
    a = load_settings({"LAKEHOUSE_HOME": str(tmp_path / "a")})
    b = load_settings({"LAKEHOUSE_HOME": str(tmp_path / "b")})
    assert lock_name(a, "silver") != lock_name(b, "silver")
    assert advisory_key(lock_name(a, "silver")) != advisory_key(lock_name(a, "gold"))
    assert advisory_key("x") == advisory_key("x")
    assert -(2**63) <= advisory_key(lock_name(a, "audit")) < 2**63
    # The lock file sits beside the SQLite catalog every writer of the warehouse shares.
    assert lock_file(a, lock_name(a, "silver")).parent == tmp_path / "a" / ".locks"
