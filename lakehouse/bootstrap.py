"""Create what the lakehouse needs inside its services, idempotently.

* ``buckets``: the object-store buckets (``BUCKETS``, else the buckets of LAKEHOUSE_RAW_URI and
  LAKEHOUSE_WAREHOUSE_URI), through the same S3 client settings as the pipeline
  (LAKEHOUSE_S3_ENDPOINT with path-style addressing, AWS_*).
* ``databases``: one login role and one database owned by it per ``<P>_DB/_USER/_PASSWORD``
  triple (P in CATALOG, MLFLOW, AIRFLOW); existing roles get their password (re)set from the
  environment, existing databases are left alone. The admin connection is libpq's: PGHOST,
  PGPORT, PGUSER, PGPASSWORD, PGDATABASE.

Both wait for their server (``LAKEHOUSE_INIT_WAIT_SECONDS``) and fail with a message naming it.
Run any number of times; the same entrypoint serves ``make services-up`` and the chart's init
Jobs::

    python -m lakehouse.bootstrap buckets|databases|all
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lakehouse.settings import (
    BootstrapSettings,
    DatabaseSpec,
    Settings,
    SettingsError,
    load_bootstrap_settings,
    load_settings,
)
from lakehouse.storage import filesystem, is_s3

T = TypeVar("T")


class BootstrapError(RuntimeError):
    """A service could not be reached or initialised; the message names it."""


def _retry(what: str, fn: Callable[[], T], wait_seconds: float, interval: float = 1.0) -> T:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return fn()
        except Exception as err:  # any failure to connect: retried until the deadline
            if time.monotonic() >= deadline:
                raise BootstrapError(
                    f"{what} not ready after {wait_seconds:.0f} s: {type(err).__name__}: {err}"
                ) from err
            time.sleep(interval)


def bucket_of(uri: str) -> str:
    """``s3://bucket/key`` -> ``bucket``."""
    return uri.split("://", 1)[1].split("/", 1)[0]


def wanted_buckets(settings: Settings, boot: BootstrapSettings) -> list[str]:
    if boot.buckets:
        return list(dict.fromkeys(boot.buckets))
    uris = [u for u in (settings.raw_uri, settings.warehouse_uri) if is_s3(u)]
    return list(dict.fromkeys(bucket_of(u) for u in uris))


def ensure_buckets(settings: Settings, buckets: Sequence[str], wait_seconds: float) -> list[str]:
    """Create every missing bucket; returns the buckets the store lists afterwards."""
    endpoint = settings.s3_endpoint or "the default AWS endpoint"
    fs, _ = filesystem(settings, "s3://")

    def listing() -> list[str]:
        fs.invalidate_cache()
        return [p.rstrip("/") for p in fs.ls("", refresh=True)]

    present = set(_retry(f"object store at {endpoint}", listing, wait_seconds))
    for bucket in buckets:
        if bucket in present:
            continue
        try:
            fs.mkdir(bucket, create_parents=True)
        except FileExistsError:
            pass  # created meanwhile (another init run): fine
        except Exception as err:
            raise BootstrapError(f"cannot create bucket {bucket!r} at {endpoint}: {err}") from err
    present = set(listing())
    missing = [b for b in buckets if b not in present]
    if missing:
        raise BootstrapError(f"buckets {missing} still missing at {endpoint} after creation")
    return sorted(present)


def _connect_admin(wait_seconds: float) -> Any:
    import psycopg2

    def connect() -> Any:
        conn = psycopg2.connect("", connect_timeout=5)  # libpq reads PGHOST, PGPORT, ...
        conn.autocommit = True
        return conn

    return _retry("PostgreSQL (libpq PGHOST/PGPORT)", connect, wait_seconds)


def ensure_database(conn: Any, spec: DatabaseSpec) -> None:
    """Role (login, password from the spec) and database owned by it; public access revoked."""
    from psycopg2 import sql

    role, db = sql.Identifier(spec.role), sql.Identifier(spec.name)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.role,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        cur.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(spec.password))
        )
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (spec.name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, role))
        cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, role))
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))


def ensure_databases(specs: Sequence[DatabaseSpec], wait_seconds: float) -> None:
    conn = _connect_admin(wait_seconds)
    try:
        for spec in specs:
            ensure_database(conn, spec)
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.bootstrap", description=__doc__)
    parser.add_argument("what", choices=("buckets", "databases", "all"))
    args = parser.parse_args(argv)
    try:
        boot = load_bootstrap_settings()
        if args.what in ("buckets", "all"):
            settings = load_settings()
            buckets = wanted_buckets(settings, boot)
            if not buckets:
                raise SettingsError("no bucket to create: set BUCKETS or s3:// LAKEHOUSE_*_URI")
            ensure_buckets(settings, buckets, boot.wait_seconds)
            print(f"buckets {' '.join(buckets)} at {settings.s3_endpoint or 'AWS'}: ok")
        if args.what in ("databases", "all"):
            if not boot.databases:
                raise SettingsError("no database to create: set CATALOG_DB/_USER/_PASSWORD, ...")
            ensure_databases(boot.databases, boot.wait_seconds)
            for spec in boot.databases:
                print(f"database {spec.name} owned by {spec.role}: ok")
    except (SettingsError, BootstrapError) as err:
        print(f"bootstrap failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
