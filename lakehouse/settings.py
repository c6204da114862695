"""All configuration, in one place, from the environment.

No other module reads a setting from the environment (ml/stage.py and spark_apps/session.py
only set quiet defaults for libraries); :func:`settings_keys` lists every variable read here,
and the tests hold the chart's ConfigMap and pipeline contract to it. Embedded defaults live
under ``LAKEHOUSE_HOME`` (default ``./.lakehouse``): a local warehouse folder, an Iceberg JDBC
catalog on SQLite and a local MLflow store. The same keys point at S3 and PostgreSQL in the
cluster, where the chart injects them from one ConfigMap (plain settings) and one Secret
(credentials).

| variable                         | default (embedded)                      |
|----------------------------------|-----------------------------------------|
| LAKEHOUSE_HOME                   | ./.lakehouse                            |
| LAKEHOUSE_RAW_URI                | $LAKEHOUSE_HOME/raw   (or s3://bucket/…)|
| LAKEHOUSE_WAREHOUSE_URI          | $LAKEHOUSE_HOME/warehouse               |
| LAKEHOUSE_CATALOG_URI            | jdbc:sqlite:$LAKEHOUSE_HOME/catalog.db  |
| LAKEHOUSE_CATALOG_USER           | unset                                   |
| LAKEHOUSE_CATALOG_PASSWORD       | unset                                   |
| LAKEHOUSE_CATALOG_NAME           | lakehouse                               |
| LAKEHOUSE_S3_ENDPOINT            | unset (AWS default endpoint)            |
| AWS_ACCESS_KEY_ID                | standard AWS variables                  |
| AWS_SECRET_ACCESS_KEY            | standard AWS variables                  |
| AWS_REGION                       | us-east-1                               |
| MLFLOW_TRACKING_URI              | sqlite:///$LAKEHOUSE_HOME/mlflow.db (*) |
| LAKEHOUSE_MLFLOW_PREFIX          | lakehouse: names lakehouse-anomaly, … (**)  |
| LAKEHOUSE_SPARK_MASTER           | local[2]; under spark-submit: its master|
| PYSPARK_GATEWAY_PORT             | set by spark-submit (tells it is there) |
| LAKEHOUSE_SHUFFLE_PARTITIONS     | 4                                       |
| LAKEHOUSE_SPARK_DRIVER_MEMORY    | 3g                                      |
| LAKEHOUSE_SPARK_UI               | false                                   |
| LAKEHOUSE_SPARK_QUICK_JIT        | true: cluster stage JVMs compile with C1 only (****) |
| LAKEHOUSE_JARS_CACHE             | ~/.cache/lakehouse/ivy                  |
| LAKEHOUSE_SEED                   | 42                                      |
| LAKEHOUSE_DEVICES                | 40                                      |
| LAKEHOUSE_SITES                  | 4                                       |
| LAKEHOUSE_READING_SECONDS        | 60  (one reading per device per minute) |
| LAKEHOUSE_BAD_RATES              | unset: generator defaults; "malformed_json=0.01,…" overrides |
| LAKEHOUSE_DEMO_START             | 2026-01-05                              |
| LAKEHOUSE_DEMO_DAYS              | 3 (a forecast needs a day before)       |
| LAKEHOUSE_LOCK_TIMEOUT_SECONDS   | 1800: how long a stage waits for another run's writer lock |
| LAKEHOUSE_MAX_LATENESS_DAYS      | 7: the lateness horizon (***)           |

(*) MLflow 3 refuses the file store (``./mlruns``) by default and registry aliases need a
database, so the embedded store is SQLite; the ML code keeps its artifacts under
``$LAKEHOUSE_HOME/mlartifacts`` (a tracking server manages its own).
(**) Warehouses that share one MLflow server each need their own prefix, or one's champion model
would decide the other's promotions and scores.
(***) An event older than its ingest date minus this many days is quarantined
(``stale_timestamp``); every stage that looks back for late events looks back this far.
(****) A SparkApplication's driver and executor live for one interval on a 1-CPU limit, where
the JIT's optimising compiler (C2) takes the CPU from the work before its code pays back;
``false`` brings C2 back for intervals of many millions of events (spark_apps/session.py).

Service initialisation (``lakehouse.bootstrap``, run by ``make services-up`` and the chart's init
Jobs) reads its own keys through :func:`load_bootstrap_settings`: ``BUCKETS`` (names separated by
spaces or commas) and, per database, ``<P>_DB``/``<P>_USER``/``<P>_PASSWORD`` for P in CATALOG,
MLFLOW, AIRFLOW (the names the chart's init Job uses); ``LAKEHOUSE_INIT_WAIT_SECONDS`` (300).
The PostgreSQL admin connection comes from libpq's own ``PG*`` variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ENV_PREFIX = "LAKEHOUSE_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    home: Path
    raw_uri: str
    warehouse_uri: str
    catalog_uri: str
    catalog_name: str
    catalog_user: str | None
    catalog_password: str | None = field(repr=False)
    s3_endpoint: str | None
    aws_access_key_id: str | None = field(repr=False)
    aws_secret_access_key: str | None = field(repr=False)
    aws_region: str
    mlflow_tracking_uri: str
    mlflow_prefix: str
    spark_master: str | None  # None: the master spark-submit was given (cluster drivers)
    shuffle_partitions: int
    spark_driver_memory: str
    spark_ui: bool
    spark_quick_jit: bool
    jars_cache: Path
    seed: int
    devices: int
    sites: int
    reading_seconds: int
    bad_rates: Mapping[str, float]
    demo_start: date
    demo_days: int
    lock_timeout_seconds: int = 1800
    max_lateness_days: int = 7

    @property
    def uses_s3(self) -> bool:
        return any(u.startswith(("s3://", "s3a://")) for u in (self.raw_uri, self.warehouse_uri))

    @property
    def uses_postgres(self) -> bool:
        return self.catalog_uri.startswith("jdbc:postgresql:")

    @property
    def summary_path(self) -> Path:
        return self.home / "summary.json"


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    value = _opt(env, name)
    return default if value is None else value


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise SettingsError(
            f"{name} must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or "
            f"digit; got {value!r}"
        )
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _str(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _str(env, name, str(default)).lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def parse_rates(raw: str | None, name: str = ENV_PREFIX + "BAD_RATES") -> dict[str, float]:
    """Parse ``kind=rate,kind=rate`` into a dict; rates are fractions in [0, 1)."""
    rates: dict[str, float] = {}
    if not raw:
        return rates
    for item in raw.split(","):
        kind, sep, value = item.strip().partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not kind or not 0.0 <= rate < 1.0:
            raise SettingsError(f"{name}: expected kind=rate with 0 <= rate < 1, got {item!r}")
        rates[kind.strip()] = rate
    return rates


def _spark_master(env: Mapping[str, str]) -> str | None:
    """An explicit LAKEHOUSE_SPARK_MASTER wins; a driver launched by spark-submit (the Spark
    Operator's) keeps the master it was given; anything else runs embedded on local[2]."""
    explicit = _opt(env, ENV_PREFIX + "SPARK_MASTER")
    if explicit:
        return explicit
    return None if _opt(env, "PYSPARK_GATEWAY_PORT") else "local[2]"


def _local_uri(path: Path) -> str:
    return str(path.resolve())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    p = ENV_PREFIX
    home = Path(_str(env, p + "HOME", ".lakehouse")).expanduser().resolve()
    demo_start_raw = _str(env, p + "DEMO_START", "2026-01-05")
    try:
        demo_start = date.fromisoformat(demo_start_raw)
    except ValueError:
        raise SettingsError(f"{p}DEMO_START must be YYYY-MM-DD, got {demo_start_raw!r}") from None
    return Settings(
        home=home,
        raw_uri=_str(env, p + "RAW_URI", _local_uri(home / "raw")),
        warehouse_uri=_str(env, p + "WAREHOUSE_URI", _local_uri(home / "warehouse")),
        catalog_uri=_str(env, p + "CATALOG_URI", f"jdbc:sqlite:{home / 'catalog.db'}"),
        catalog_name=_str(env, p + "CATALOG_NAME", "lakehouse"),
        catalog_user=_opt(env, p + "CATALOG_USER"),
        catalog_password=_opt(env, p + "CATALOG_PASSWORD"),
        s3_endpoint=_opt(env, p + "S3_ENDPOINT"),
        aws_access_key_id=_opt(env, "AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_opt(env, "AWS_SECRET_ACCESS_KEY"),
        aws_region=_str(env, "AWS_REGION", "us-east-1"),
        mlflow_tracking_uri=_str(env, "MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
        mlflow_prefix=_name(env, p + "MLFLOW_PREFIX", "lakehouse"),
        spark_master=_spark_master(env),
        shuffle_partitions=_int(env, p + "SHUFFLE_PARTITIONS", 4, minimum=1),
        spark_driver_memory=_str(env, p + "SPARK_DRIVER_MEMORY", "3g"),
        spark_ui=_bool(env, p + "SPARK_UI", False),
        spark_quick_jit=_bool(env, p + "SPARK_QUICK_JIT", True),
        jars_cache=Path(
            _str(env, p + "JARS_CACHE", str(Path.home() / ".cache" / "lakehouse" / "ivy"))
        ).expanduser(),
        seed=_int(env, p + "SEED", 42),
        devices=_int(env, p + "DEVICES", 40, minimum=1),
        sites=_int(env, p + "SITES", 4, minimum=1),
        reading_seconds=_int(env, p + "READING_SECONDS", 60, minimum=1),
        bad_rates=parse_rates(_opt(env, p + "BAD_RATES")),
        demo_start=demo_start,
        demo_days=_int(env, p + "DEMO_DAYS", 3, minimum=1),
        lock_timeout_seconds=_int(env, p + "LOCK_TIMEOUT_SECONDS", 1800, minimum=1),
        max_lateness_days=_int(env, p + "MAX_LATENESS_DAYS", 7, minimum=1),
    )


class _ReadRecorder(Mapping[str, str]):
    """An empty environment that remembers every variable asked of it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_keys() -> frozenset[str]:
    """Every variable :func:`load_settings` reads: the contract a deployment's ConfigMap and
    Secret are checked against (a key the code never reads is a typo or a leftover)."""
    recorder = _ReadRecorder()
    load_settings(recorder)
    return frozenset(recorder.asked)


BOOTSTRAP_DATABASE_PREFIXES = ("CATALOG", "MLFLOW", "AIRFLOW")


@dataclass(frozen=True)
class DatabaseSpec:
    """One database and the login role that owns it."""

    name: str
    role: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BootstrapSettings:
    buckets: tuple[str, ...]
    databases: tuple[DatabaseSpec, ...]
    wait_seconds: int


def load_bootstrap_settings(env: Mapping[str, str] | None = None) -> BootstrapSettings:
    """What ``lakehouse.bootstrap`` creates, from ``env`` (default: the process environment).

    A database is wanted when any of its three variables is set; then all three are required.
    """
    env = os.environ if env is None else env
    buckets = tuple(b for b in _str(env, "BUCKETS", "").replace(",", " ").split() if b)
    databases = []
    for prefix in BOOTSTRAP_DATABASE_PREFIXES:
        names = (f"{prefix}_DB", f"{prefix}_USER", f"{prefix}_PASSWORD")
        values = [_opt(env, n) for n in names]
        if not any(values):
            continue
        missing = [n for n, v in zip(names, values, strict=True) if v is None]
        if missing:
            raise SettingsError(f"{', '.join(missing)} must be set together with {prefix}_DB")
        name, role, password = values
        databases.append(DatabaseSpec(str(name), str(role), str(password)))
    return BootstrapSettings(
        buckets=buckets,
        databases=tuple(databases),
        wait_seconds=_int(env, ENV_PREFIX + "INIT_WAIT_SECONDS", 300, minimum=1),
    )
