"""The ingest manifest: what the ingest stage wrote for one ingest date, so bronze can prove
that every line written was landed."""

from __future__ import annotations

import json
from datetime import date

from lakehouse import storage
from lakehouse.settings import Settings
from lakehouse.tables import manifest_uri


def write_manifest(
    settings: Settings, day: date, lines_per_file: dict[str, int], injected: dict[str, int]
) -> None:
    """Record the lines written per object (URIs as lakehouse.storage lists them)."""
    manifest = {
        "ingest_date": day.isoformat(),
        "lines": sum(lines_per_file.values()),
        "files": dict(sorted(lines_per_file.items())),
        "injected": dict(sorted(injected.items())),
    }
    storage.write_bytes(
        settings, manifest_uri(settings, day), json.dumps(manifest, indent=2).encode()
    )


def read_manifest(settings: Settings, day: date) -> dict | None:
    """The manifest for ``day``, or None when the raw data did not come from our ingest."""
    uri = manifest_uri(settings, day)
    if not storage.exists(settings, uri):
        return None
    return json.loads(storage.read_bytes(settings, uri))
