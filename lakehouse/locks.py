"""One writer per stage and warehouse, across processes and machines.

Delta on S3 has no atomic put-if-absent in the log store Spark uses here, so two drivers
committing to the same table at once can overwrite each other's commit. Every stage therefore
holds a lock named after the warehouse and the stage's lock scope while it writes; a second run
of the same stage waits (saying so) and then redoes the interval idempotently. Ingest and
bronze share the scope "raw" (ingest rewrites the raw day bronze reads; see
``lakehouse.pipeline``). The audit table, written by every Spark stage, has its own short lock,
and maintenance takes each table's writer lock before it commits to that table.

Where the lock lives follows the catalog, the one database every writer of a warehouse shares:

* PostgreSQL catalog: a session-level advisory lock, released by the server when the holder's
  connection ends, so a killed run never leaves a stale lock;
* SQLite (embedded) catalog: ``flock`` on a file beside the catalog database, released by the
  kernel when the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lakehouse.context import StageInputError
from lakehouse.pipeline import lock_scope
from lakehouse.settings import Settings

POLL_SECONDS = 1.0
WaitFn = Callable[[str], None]


class LockTimeoutError(StageInputError):
    """Another run held the lock for longer than LAKEHOUSE_LOCK_TIMEOUT_SECONDS."""


def lock_name(settings: Settings, scope: str) -> str:
    return f"{settings.warehouse_uri.rstrip('/')}|{scope}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_file(settings: Settings, name: str) -> Path:
    """The flock file of ``name``: beside the SQLite catalog (shared by every writer of this
    warehouse), else under LAKEHOUSE_HOME."""
    parsed = settings.catalog_uri.removeprefix("jdbc:sqlite:")
    folder = Path(parsed).parent if parsed != settings.catalog_uri else settings.home
    digest = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()
    return folder / ".locks" / f"{digest}.lock"


def postgres_address(catalog_uri: str) -> tuple[str, int, str]:
    """(host, port, database) of a ``jdbc:postgresql://host:port/db`` URI."""
    parsed = urlparse(catalog_uri.removeprefix("jdbc:"))
    return parsed.hostname or "localhost", parsed.port or 5432, parsed.path.lstrip("/")


def _wait(try_once: Callable[[], bool], what: str, timeout: float, on_wait: WaitFn | None) -> None:
    began = time.monotonic()
    told = False
    while not try_once():
        if not told and on_wait is not None:
            on_wait(f"another run holds {what}; waiting (up to {timeout:.0f} s)")
            told = True
        if time.monotonic() - began > timeout:
            raise LockTimeoutError(
                f"another run held {what} for more than {timeout:.0f} s; "
                "raise LAKEHOUSE_LOCK_TIMEOUT_SECONDS or stop that run, then rerun the interval"
            )
        time.sleep(POLL_SECONDS)


@contextmanager
def _postgres_lock(settings: Settings, name: str, on_wait: WaitFn | None) -> Iterator[None]:
    import psycopg2

    host, port, database = postgres_address(settings.catalog_uri)
    conn: Any = psycopg2.connect(
        host=host,
        port=port,
        dbname=database,
        user=settings.catalog_user,
        password=settings.catalog_password,
        connect_timeout=10,
        application_name="lakehouse-lock",
    )
    conn.autocommit = True
    key = advisory_key(name)
    try:
        with conn.cursor() as cur:

            def try_once() -> bool:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                return bool(cur.fetchone()[0])

            _wait(try_once, f"the lock {name!r}", settings.lock_timeout_seconds, on_wait)
            try:
                yield
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        conn.close()


@contextmanager
def _file_lock(settings: Settings, name: str, on_wait: WaitFn | None) -> Iterator[None]:
    path = lock_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _wait(try_once, f"the lock {name!r}", settings.lock_timeout_seconds, on_wait)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def writer_lock(settings: Settings, writer: str, on_wait: WaitFn | None = None) -> Iterator[None]:
    """Hold the lock of ``writer`` (a stage name, or "audit") on this warehouse; stages that
    share a lock scope share the lock."""
    name = lock_name(settings, lock_scope(writer))
    backend = _postgres_lock if settings.uses_postgres else _file_lock
    with backend(settings, name, on_wait):
        yield
