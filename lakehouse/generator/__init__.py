"""Deterministic synthetic IoT events, with labelled anomalies and every class of bad input.

The data interval is one UTC day. Generating day D produces 24 hourly objects

    {raw_events}/ingest_date=D/ingest_hour=HH/part-00000.jsonl.gz       (gzip JSON lines)

plus the anomaly ground truth (kept apart from the events)

    {raw_ground_truth}/event_date=D/part-00000.jsonl.gz

and the device registry (``raw_devices``, plain JSON lines).

Determinism: everything is a pure function of (config, day). Random numbers come from numpy
``default_rng`` seeded with a ``SeedSequence`` of (seed, day ordinal, device index, purpose), so
days and devices are independent of each other and of how many days are generated; gzip is
written with ``mtime=0`` and no file name; there is no wall clock anywhere. Re-running a day
rewrites byte-identical objects.

What day D's batch delivers:

* every clean event of D, in the ingest hour of its timestamp, except a sample withheld as late
  (delivered with D+1, in its hours 00-02);
* D-1's withheld late events, in hours 00-02 (generating D recomputes D-1's plan for this);
* exact duplicate re-sends: byte-identical copies of some of D's delivered lines, in the same or
  a later hour, and a few byte-identical copies of lines delivered with D-1;
* bad lines, each replacing one clean event of D (the clean version is not delivered):
  malformed JSON, a missing required field, a wrong type, an impossible value, an unknown device,
  a future timestamp, an invalid key (a blank or whitespace id, or one holding an invisible
  character) and a stale timestamp (a clock reset to 1970). Anomaly-labelled events are never
  mutated or withheld.

Reconciliation of one batch (``DayBatch``)::

    line_count == len(valid_events) - cross_interval_resends
                  + injected["duplicate_resend"] + sum(injected[r] for r in REASON_CODES)

``valid_events`` holds D-1's re-sent events once each (silver already has them), and
``injected["duplicate_resend"]`` counts every re-sent copy, in-day and cross-interval.
"""

from __future__ import annotations

from lakehouse.generator.batch import DayBatch, generate_day
from lakehouse.generator.config import DEFAULT_BAD_RATES, GeneratorConfig
from lakehouse.generator.fleet import Device, device_registry, registry_lines
from lakehouse.generator.raw_zone import write_day

__all__ = [
    "DEFAULT_BAD_RATES",
    "DayBatch",
    "Device",
    "GeneratorConfig",
    "device_registry",
    "generate_day",
    "registry_lines",
    "write_day",
]
