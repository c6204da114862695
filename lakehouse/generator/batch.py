"""One day's batch: which readings are withheld as late or become bad lines (the plan), and the
hourly files that deliver the rest with D-1's late events and the re-sent duplicates."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from lakehouse.events import BadInput
from lakehouse.generator.config import (
    HOUR_MS,
    HOURS,
    LATE_HOURS,
    P_CONTENT,
    P_DUPLICATE,
    P_LATE,
    P_PLACE,
    P_REJECT,
    P_RESEND,
    REJECTED,
    GeneratorConfig,
    random_stream,
)
from lakehouse.generator.fleet import Device, device_registry
from lakehouse.generator.lines import mutate, render
from lakehouse.generator.readings import KINDS, CleanDay, clean_day


def _count(rate: float, n: int) -> int:
    return 0 if rate <= 0 else max(1, round(rate * n))


@dataclass(frozen=True)
class _Plan:
    """Which of a day's readings are withheld as late and which become bad lines."""

    clean: CleanDay
    late: np.ndarray  # sorted indices withheld from this day, delivered with the next
    rejected: dict[int, BadInput]  # index -> class of the bad line replacing it

    def delivered_clean(self) -> np.ndarray:
        """Sorted indices delivered clean with this day (not late, not mutated)."""
        keep = np.ones(len(self.clean), dtype=bool)
        keep[self.late] = False
        keep[np.fromiter(self.rejected, dtype=np.int64, count=len(self.rejected))] = False
        return np.flatnonzero(keep)


def _plan(cfg: GeneratorConfig, fleet: list[Device], day: date) -> _Plan:
    clean = clean_day(cfg, fleet, day)
    n = len(clean)
    available = clean.kind == 0  # anomaly-labelled readings are never withheld or mutated
    n_late = _count(cfg.bad_rates[BadInput.LATE], n)
    counts = [_count(cfg.bad_rates[k], n) for k in REJECTED]
    if n_late + sum(counts) > int(available.sum()):
        raise ValueError(
            f"{day}: {n_late + sum(counts)} late/bad events requested but only "
            f"{int(available.sum())} normal readings; lower bad_rates or add devices"
        )
    late_rng = random_stream(cfg, day.toordinal(), 0, P_LATE)
    late = np.sort(late_rng.choice(np.flatnonzero(available), n_late, replace=False))
    available[late] = False
    reject_rng = random_stream(cfg, day.toordinal(), 0, P_REJECT)
    picked = reject_rng.choice(np.flatnonzero(available), sum(counts), replace=False).tolist()
    rejected: dict[int, BadInput] = {}
    pos = 0
    for kind, k in zip(REJECTED, counts, strict=True):
        for i in picked[pos : pos + k]:
            rejected[int(i)] = kind
        pos += k
    return _Plan(clean, late, rejected)


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class DayBatch:
    """Everything generated for one day, before any I/O.

    ``files``: hour (0..23) -> lines in file order. ``ground_truth``: labelled anomalies of the
    day, ``{event_id, device_id, event_ts, kind}``. ``valid_events``: the valid events this
    batch delivers, one dict (the raw JSON fields) per event_id: D-1's late arrivals and
    re-sent events first, then D's clean events, each part in (event_ts, device) order.
    ``injected``: lines per ``BadInput`` value delivered in this batch (``late_event`` counts
    arrivals from D-1; ``duplicate_resend`` every re-sent copy). ``withheld_late``: D's events
    held back for D+1. ``cross_interval_resends``: copies of D-1 lines in this batch.
    """

    config: GeneratorConfig
    day: date
    files: dict[int, list[str]]
    ground_truth: list[dict]
    valid_events: list[dict]
    injected: dict[str, int]
    withheld_late: int
    cross_interval_resends: int

    @property
    def line_count(self) -> int:
        return sum(len(lines) for lines in self.files.values())

    def counts(self) -> dict[str, int]:
        return {
            "lines": self.line_count,
            "valid_events": len(self.valid_events),
            "anomalies": len(self.ground_truth),
            "withheld_late": self.withheld_late,
            "cross_interval_resends": self.cross_interval_resends,
            **self.injected,
        }


def _merge(base: list[str], inserts: list[tuple[int, int, str]]) -> list[str]:
    """``base`` with each (slot, seq, line) inserted before base line ``slot``."""
    out: list[str] = []
    done = 0
    for slot, _, line in sorted(inserts):
        out.extend(base[done:slot])
        out.append(line)
        done = max(done, slot)
    out.extend(base[done:])
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a day allocates ~10 objects per event, none cyclic,
    and repeated full collections over them would cost more than the work itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate_day(cfg: GeneratorConfig, day: date) -> DayBatch:
    """Day ``day``'s batch (pure: no I/O, no clock)."""
    with _no_gc():
        return _generate_day(cfg, day)


def _generate_day(cfg: GeneratorConfig, day: date) -> DayBatch:
    fleet = device_registry(cfg)
    plan = _plan(cfg, fleet, day)
    prev = _plan(cfg, fleet, day - timedelta(days=1))
    clean = plan.clean
    ordinal = day.toordinal()
    rendered = render(cfg, fleet, clean, np.arange(len(clean)))

    # Bad lines replace their clean event in place.
    lines = list(rendered.line)
    content_rng = random_stream(cfg, ordinal, 0, P_CONTENT)
    for i in sorted(plan.rejected):
        sensor = fleet[rendered.dev[i]].sensor
        fields = rendered.fields(fleet, i)
        ts_ms = int(clean.ts_ms[i])
        lines[i] = mutate(plan.rejected[i], fields, day, ts_ms, sensor, cfg, content_rng)

    # Base delivery: D's events (minus the late sample) in the hour of their timestamp.
    keep = np.ones(len(clean), dtype=bool)
    keep[plan.late] = False
    kept = np.flatnonzero(keep)
    kept_hour = clean.ts_ms[kept] // HOUR_MS
    bounds = np.searchsorted(kept_hour, np.arange(HOURS + 1)).tolist()
    base = [[lines[i] for i in kept[bounds[h] : bounds[h + 1]].tolist()] for h in range(HOURS)]

    # Insertions per hour: (slot = before which base line, sequence, line).
    inserts: list[list[tuple[int, int, str]]] = [[] for _ in range(HOURS)]
    seq = 0

    def insert(hour: int, slot: int, line: str) -> None:
        nonlocal seq
        seq += 1
        inserts[hour].append((slot, seq, line))

    place_rng = random_stream(cfg, ordinal, 0, P_PLACE)
    prev_late = render(cfg, fleet, prev.clean, prev.late)
    for line in prev_late.line:
        h = int(place_rng.integers(0, LATE_HOURS))
        insert(h, int(place_rng.integers(0, len(base[h]) + 1)), line)

    n_dup = _count(cfg.bad_rates[BadInput.DUPLICATE], len(clean))
    n_cross = max(1, n_dup // 10) if n_dup >= 2 else 0
    delivered = plan.delivered_clean()
    dup_rng = random_stream(cfg, ordinal, 0, P_DUPLICATE)
    n_in_day = min(n_dup - n_cross, len(delivered))
    sources = np.sort(dup_rng.choice(delivered, n_in_day, replace=False))
    at = np.searchsorted(kept, sources)
    for i, k in zip(sources.tolist(), at.tolist(), strict=True):
        h_src = int(kept_hour[k])
        h = min(HOURS - 1, h_src + int(dup_rng.integers(0, 3)))
        lo = k - bounds[h_src] + 1 if h == h_src else 0  # after the original
        insert(h, int(dup_rng.integers(lo, len(base[h]) + 1)), rendered.line[i])

    resend_rng = random_stream(cfg, ordinal, 0, P_RESEND)
    prev_pool = prev.delivered_clean()
    resent_idx = np.sort(resend_rng.choice(prev_pool, min(n_cross, len(prev_pool)), False))
    resent = render(cfg, fleet, prev.clean, resent_idx)
    for line in resent.line:
        h = int(resend_rng.integers(0, HOURS))
        insert(h, int(resend_rng.integers(0, len(base[h]) + 1)), line)

    files = {h: _merge(base[h], inserts[h]) for h in range(HOURS)}

    # Valid events: D-1's late arrivals and re-sent events, then D's clean deliveries.
    earlier = prev_late.events(fleet, list(range(len(prev.late))))
    earlier += resent.events(fleet, list(range(len(resent_idx))))
    earlier.sort(key=lambda e: (e["event_ts"], e["device_id"]))
    valid = earlier + rendered.events(fleet, delivered.tolist())

    ground_truth = [
        {
            "event_id": rendered.event_id[i],
            "device_id": fleet[rendered.dev[i]].device_id,
            "event_ts": rendered.event_ts[i],
            "kind": KINDS[int(clean.kind[i]) - 1].value,
        }
        for i in np.flatnonzero(clean.kind > 0).tolist()
    ]

    injected = {b.value: 0 for b in BadInput}
    for kind in plan.rejected.values():
        injected[kind.value] += 1
    injected[BadInput.DUPLICATE.value] = len(sources) + len(resent_idx)
    injected[BadInput.LATE.value] = len(prev.late)
    return DayBatch(
        config=cfg,
        day=day,
        files=files,
        ground_truth=ground_truth,
        valid_events=valid,
        injected=injected,
        withheld_late=len(plan.late),
        cross_interval_resends=len(resent_idx),
    )
