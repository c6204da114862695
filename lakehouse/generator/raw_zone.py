"""Writing a day's batch to the raw zone (its layout: lakehouse.tables)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

from lakehouse import storage
from lakehouse.generator.batch import DayBatch
from lakehouse.generator.config import HOURS
from lakehouse.generator.fleet import registry_lines
from lakehouse.settings import Settings
from lakehouse.tables import (
    events_prefix,
    ground_truth_prefix,
    ground_truth_uri,
    hour_uri,
    locations,
)


def _gzip_lines(lines: list[str]) -> bytes:
    text = "".join(line + "\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), compresslevel=3, mtime=0)


def write_day(
    settings: Settings, batch: DayBatch, progress: Callable[[], None] | None = None
) -> tuple[list[str], int]:
    """Replace the day's raw objects with ``batch``; returns (written URIs, event lines).

    New objects are written over the old ones first (one PUT each, so a reader such as a
    concurrent bronze run sees either the old or the new object, never a missing one; with the
    same settings they are byte-identical). Only then are objects left by an earlier run with
    other settings removed from the day's ``ingest_date=`` prefix and ground-truth partition.
    ``progress`` is called once per hourly object written.
    """
    written = []
    for hour in range(HOURS):
        uri = hour_uri(settings, batch.day, hour)
        storage.write_bytes(settings, uri, _gzip_lines(batch.files.get(hour, [])))
        written.append(uri)
        if progress is not None:
            progress()
    uri = ground_truth_uri(settings, batch.day)
    storage.write_bytes(settings, uri, _gzip_lines([json.dumps(g) for g in batch.ground_truth]))
    written.append(uri)
    for prefix in (events_prefix(settings, batch.day), ground_truth_prefix(settings, batch.day)):
        for stale in set(storage.list_files(settings, prefix)) - set(written):
            storage.remove_prefix(settings, stale)
    uri = locations(settings).raw_devices
    storage.write_bytes(
        settings, uri, "".join(x + "\n" for x in registry_lines(batch.config)).encode()
    )
    written.append(uri)
    return written, batch.line_count
