"""Turn "a server is not there" into one line that names it.

A stage that loses its S3 endpoint, catalog database or MLflow server fails deep inside S3A,
JDBC, botocore or requests, each with a different exception and pages of stack trace. The entry
points (the CLI, pod and SparkApplication mains) ask :func:`unreachable` whether a failure is a
connection failure to one of the configured servers and, if so, print one line naming it; any
other failure keeps its traceback.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from urllib.parse import urlparse

from lakehouse.settings import Settings

# Phrases the clients use when nothing answers (S3A/Apache HTTP, PgJDBC, psycopg2, urllib3).
CONNECTION_FAILURE = re.compile(
    r"Connection refused|connection refused|Connect timed out|connect timed out|"
    r"Unable to execute HTTP request|Could not connect to the endpoint URL|Max retries exceeded|"
    r"Connection reset|UnknownHostException|Name or service not known|"
    r"No route to host|the database system is (?:shutting down|starting up)"
)


def servers(settings: Settings) -> list[tuple[str, str, str, int]]:
    """(what, setting, host, port) of every server a stage may talk to."""
    found = []
    candidates = [
        ("the S3 endpoint", "LAKEHOUSE_S3_ENDPOINT", settings.s3_endpoint),
        ("the catalog database", "LAKEHOUSE_CATALOG_URI", settings.catalog_uri),
        ("the MLflow server", "MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
    ]
    for what, key, uri in candidates:
        if not uri or uri.startswith(("jdbc:sqlite", "sqlite:", "file:")):
            continue
        parsed = urlparse(uri.removeprefix("jdbc:"))
        if parsed.hostname:
            default = 443 if parsed.scheme == "https" else 80
            port = parsed.port or (5432 if "postgresql" in parsed.scheme else default)
            found.append((what, key, parsed.hostname, port))
    return found


def failure_text(exc: BaseException) -> str:
    """The messages of ``exc`` and its causes (a Py4J error carries the Java trace)."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def unreachable(exc: BaseException, settings: Settings) -> str | None:
    """One line naming the configured server ``exc`` could not reach, or None."""
    text = failure_text(exc)
    reason = CONNECTION_FAILURE.search(text)
    if reason is None:
        return None
    for what, key, host, port in servers(settings):
        if host in text and re.search(rf"(?<!\d){port}(?!\d)", text):
            return (
                f"{what} {host}:{port} ({key}) is unreachable: {reason.group(0)}. Committed "
                "days are kept; rerun the interval once it answers."
            )
    return None


def save_traceback(exc: BaseException, settings: Settings) -> Path | None:
    """Keep the full trace under LAKEHOUSE_HOME for whoever debugs; None if that fails."""
    path = settings.home / "last-error.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path
