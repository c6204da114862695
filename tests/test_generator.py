"""The synthetic event generator: determinism, layout, bad inputs, late data, anomalies.

Expectations come from the data contract (rates, sizes, layout) and from parsing the written lines
independently, never from re-running the generator's own logic.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse import storage
from lakehouse.events import REQUIRED_FIELDS, SENSOR_TYPES, AnomalyKind, BadInput
from lakehouse.generator import (
    DayBatch,
    GeneratorConfig,
    device_registry,
    generate_day,
    registry_lines,
    write_day,
)
from lakehouse.settings import load_settings
from lakehouse.tables import locations

DAY = date(2026, 1, 5)
PREV = DAY - timedelta(days=1)
DEVICES = 6
READING_SECONDS = 300
READINGS = DEVICES * 86_400 // READING_SECONDS  # 1728 clean events per day
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOUR_PATH_RE = re.compile(
    r"/ingest_date=(\d{4}-\d\d-\d\d)/ingest_hour=(\d\d)/part-00000\.jsonl\.gz$"
)


def make_settings(home: Path, seed: int = 7, **extra: str):
    env = {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_SEED": str(seed),
        "LAKEHOUSE_DEVICES": str(DEVICES),
        "LAKEHOUSE_SITES": "2",
        "LAKEHOUSE_READING_SECONDS": str(READING_SECONDS),
        **extra,
    }
    return load_settings(env)


def tiny_config(seed: int = 7, **changes) -> GeneratorConfig:
    cfg = GeneratorConfig(seed=seed, devices=DEVICES, sites=2, reading_seconds=READING_SECONDS)
    return replace(cfg, **changes)


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def read_hours(settings, day: date) -> dict[int, list[str]]:
    """hour -> lines, read back from storage and parsed from the object names."""
    hours: dict[int, list[str]] = {}
    prefix = f"{locations(settings).raw_events}/ingest_date={day.isoformat()}"
    for uri in storage.list_files(settings, prefix):
        match = HOUR_PATH_RE.search(uri)
        assert match, uri
        assert match.group(1) == day.isoformat()
        text = gzip.decompress(storage.read_bytes(settings, uri)).decode()
        hours[int(match.group(2))] = text.splitlines()
    return hours


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def write_days(settings, start: date, end: date) -> dict[date, dict[str, int]]:
    """Generate and write each day of [start, end) as ingest does; returns each day's counts."""
    config = GeneratorConfig.from_settings(settings)
    counts = {}
    for k in range((end - start).days):
        batch = generate_day(config, start + timedelta(days=k))
        write_day(settings, batch)
        counts[batch.day] = batch.counts()
    return counts


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Three days (D-1, D, D+1) written to a local raw zone; returns (settings, results)."""
    settings = make_settings(tmp_path_factory.mktemp("gen"))
    results = write_days(settings, PREV, DAY + timedelta(days=2))
    return settings, results


def classify(line: str, hour: int, day: date, known: dict[str, dict]) -> str:
    """The bad-input class of one raw line, decided from the line alone (or 'valid')."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return BadInput.MALFORMED_JSON.value
    if any(f not in event for f in REQUIRED_FIELDS):
        return BadInput.MISSING_FIELD.value
    value, ts = event["value"], event["event_ts"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not isinstance(ts, str):
        return BadInput.WRONG_TYPE.value
    if any(not visible_key(event[k]) for k in ("event_id", "device_id")):
        return BadInput.INVALID_KEY.value
    if event["device_id"] not in known:
        return BadInput.UNKNOWN_DEVICE.value
    device = known[event["device_id"]]
    if not device["min_valid"] <= value <= device["max_valid"]:
        return BadInput.IMPOSSIBLE_VALUE.value
    end_of_hour = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=1)
    if parse_ts(ts) >= end_of_hour + timedelta(days=1):
        return BadInput.FUTURE_TIMESTAMP.value
    if parse_ts(ts) < datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=7):
        return BadInput.STALE_TIMESTAMP.value
    return "valid"


def visible_key(key: object) -> bool:
    """Non-blank text without whitespace, separators, control or format characters."""
    return (
        isinstance(key, str)
        and key != ""
        and not any(c.isspace() or unicodedata.category(c) in INVISIBLE for c in key)
    )


INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf"}


def event_ids(lines) -> set[str]:
    """Event ids of every line that parses and has one (bad lines included)."""
    ids = set()
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event.get("event_id"), str):
            ids.add(event["event_id"])
    return ids


def registry_of(settings) -> dict[str, dict]:
    text = storage.read_bytes(settings, locations(settings).raw_devices).decode()
    return {d["device_id"]: d for d in map(json.loads, text.splitlines())}


def expected_count(rate: float) -> int:
    return max(1, round(rate * READINGS))


# --------------------------------------------------------------------------- determinism, layout


def test_rerun_is_byte_identical_and_seed_changes_output(tmp_path):
    homes = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for home, seed in zip(homes, (7, 7, 8), strict=True):
        write_days(make_settings(home, seed=seed), DAY, DAY + timedelta(days=2))
    first, second, other = (tree(h / "raw") for h in homes)
    assert len(first) == 2 * 24 + 2 + 1  # hourly objects, two ground-truth files, the registry
    assert first == second
    assert first.keys() == other.keys()
    differing = [k for k in first if first[k] != other[k]]
    assert len(differing) == len(first) - 1  # everything but the seed-free registry
    for name, data in first.items():
        if name.endswith(".gz"):
            assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
            assert not data[3] & 0x08  # no file name stored


def test_objects_land_in_the_hourly_layout(written):
    settings, results = written
    loc = locations(settings)
    for day in (PREV, DAY, DAY + timedelta(days=1)):
        prefix = f"{loc.raw_events}/ingest_date={day.isoformat()}"
        uris = storage.list_files(settings, prefix)
        assert [HOUR_PATH_RE.search(u).group(2) for u in uris] == [f"{h:02d}" for h in range(24)]
        assert sum(len(v) for v in read_hours(settings, day).values()) == results[day]["lines"]
        gt = f"{loc.raw_ground_truth}/event_date={day.isoformat()}"
        assert storage.list_files(settings, gt) == [f"{gt}/part-00000.jsonl.gz"]
    assert sorted(results) == [PREV, DAY, DAY + timedelta(days=1)]


def test_registry_lists_every_device(written):
    settings, _ = written
    registry = registry_of(settings)
    assert sorted(registry) == [f"dev-{i:04d}" for i in range(DEVICES)]
    assert {d["site_id"] for d in registry.values()} == {"site-00", "site-01"}
    assert len({d["sensor_type"] for d in registry.values()}) >= 4
    for d in registry.values():
        sensor = SENSOR_TYPES[d["sensor_type"]]
        assert (d["unit"], d["min_valid"], d["max_valid"]) == (
            sensor.unit,
            sensor.min_valid,
            sensor.max_valid,
        )
    assert len(registry_lines(tiny_config())) == DEVICES


def test_rerun_removes_stale_objects(tmp_path):
    settings = make_settings(tmp_path)
    loc = locations(settings)
    stale = [
        f"{loc.raw_events}/ingest_date={DAY}/ingest_hour=24/part-00000.jsonl.gz",
        f"{loc.raw_events}/ingest_date={DAY}/ingest_hour=03/part-00001.jsonl.gz",
        f"{loc.raw_ground_truth}/event_date={DAY}/part-00009.jsonl.gz",
    ]
    neighbour = f"{loc.raw_events}/ingest_date={DAY + timedelta(days=1)}/ingest_hour=00/x.gz"
    for uri in [*stale, neighbour]:
        storage.write_bytes(settings, uri, b"stale")
    uris, lines = write_day(settings, generate_day(tiny_config(), DAY))
    for uri in stale:
        assert not storage.exists(settings, uri)
    assert storage.read_bytes(settings, neighbour) == b"stale"
    assert len(uris) == 26
    assert all(storage.exists(settings, u) for u in uris)
    assert lines == sum(len(v) for v in read_hours(settings, DAY).values())


def test_rerun_never_removes_an_object_it_rewrites(tmp_path, monkeypatch):
    """A reader of the day (a concurrent bronze run) must never find an hour missing: objects
    are overwritten in place, and only stale ones are deleted."""
    settings = make_settings(tmp_path)
    batch = generate_day(tiny_config(), DAY)
    uris, _ = write_day(settings, batch)
    stale = f"{locations(settings).raw_events}/ingest_date={DAY}/ingest_hour=24/x.jsonl.gz"
    storage.write_bytes(settings, stale, b"stale")
    removed: list[str] = []
    remove = storage.remove_prefix

    def spy(settings_, uri):
        removed.append(uri)
        remove(settings_, uri)

    monkeypatch.setattr(storage, "remove_prefix", spy)
    assert write_day(settings, batch)[0] == uris
    assert removed == [stale]


# --------------------------------------------------------------------------- bad inputs


def test_every_bad_input_class_is_present_with_exact_counts(written):
    settings, results = written
    known = registry_of(settings)
    hours = read_hours(settings, DAY)
    classes: Counter[str] = Counter()
    valid_lines: list[tuple[int, str]] = []
    for hour, lines in hours.items():
        for line in lines:
            kind = classify(line, hour, DAY, known)
            classes[kind] += 1
            if kind == "valid":
                valid_lines.append((hour, line))
    rates = GeneratorConfig().bad_rates  # the defaults
    for kind in (
        BadInput.MALFORMED_JSON,
        BadInput.MISSING_FIELD,
        BadInput.WRONG_TYPE,
        BadInput.IMPOSSIBLE_VALUE,
        BadInput.UNKNOWN_DEVICE,
        BadInput.FUTURE_TIMESTAMP,
    ):
        assert classes[kind.value] == expected_count(rates[kind]) >= 1, kind
        assert results[DAY][kind.value] == classes[kind.value]

    # Duplicates: repeated lines within the batch plus copies of lines delivered with D-1.
    text_counts = Counter(line for _, line in valid_lines)
    in_batch = sum(c - 1 for c in text_counts.values())
    prev_lines = {line for lines in read_hours(settings, PREV).values() for line in lines}
    cross = sum(1 for line in text_counts if line in prev_lines)
    assert in_batch >= 1
    assert cross >= 1
    assert in_batch + cross == expected_count(rates[BadInput.DUPLICATE])
    assert results[DAY][BadInput.DUPLICATE.value] == in_batch + cross

    # Late: D-1 events absent from D-1's delivery.
    prev_ids = event_ids(prev_lines)
    late = {
        json.loads(line)["event_id"]
        for _, line in valid_lines
        if json.loads(line)["event_ts"].startswith(PREV.isoformat())
        and json.loads(line)["event_id"] not in prev_ids
    }
    assert len(late) == expected_count(rates[BadInput.LATE])
    assert results[DAY][BadInput.LATE.value] == len(late)


def test_bad_lines_replace_clean_events_and_each_has_one_defect(written):
    settings, _ = written
    hours = read_hours(settings, DAY)
    known = registry_of(settings)
    parsed = []
    for lines in hours.values():
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    by_id = defaultdict(set)
    for event in parsed:
        if "event_id" in event:
            by_id[event["event_id"]].add(json.dumps(event, sort_keys=True))
    # A mutated event is never delivered clean as well: one version per event id.
    assert all(len(versions) == 1 for versions in by_id.values())
    wrong = [e for e in parsed if all(f in e for f in REQUIRED_FIELDS)]
    wrong_value = [e for e in wrong if isinstance(e["value"], str)]
    wrong_ts = [e for e in wrong if isinstance(e["event_ts"], int)]
    assert len(wrong_value) + len(wrong_ts) == expected_count(0.002)
    for e in wrong_ts:  # an epoch number (milliseconds) for the same day
        assert datetime.fromtimestamp(e["event_ts"] / 1000, UTC).date() == DAY
    unknown = [e for e in wrong if e["device_id"] not in known]
    assert unknown
    assert all(isinstance(e["value"], int | float) for e in unknown)


def test_batch_reconciles_with_its_lines(written):
    settings, _ = written
    batch = generate_day(tiny_config(), DAY)
    known = registry_of(settings)
    valid: dict[str, dict] = {}
    for hour, lines in batch.files.items():
        for line in lines:
            if classify(line, hour, DAY, known) == "valid":
                event = json.loads(line)
                valid[event["event_id"]] = event
    assert sorted(batch.valid_events, key=lambda e: e["event_id"]) == sorted(
        valid.values(), key=lambda e: e["event_id"]
    )
    assert batch.line_count == sum(len(v) for v in batch.files.values())
    rejected = sum(batch.injected[b] for b in ("malformed_json", "missing_required_field"))
    rejected += sum(
        batch.injected[b]
        for b in (
            "wrong_type",
            "impossible_value",
            "unknown_device",
            "future_timestamp",
            "invalid_key",
            "stale_timestamp",
        )
    )
    assert batch.line_count == (
        len(batch.valid_events)
        - batch.cross_interval_resends
        + batch.injected["duplicate_resend"]
        + rejected
    )
    assert batch.line_count == read_hours_total(settings, DAY)


def read_hours_total(settings, day: date) -> int:
    return sum(len(v) for v in read_hours(settings, day).values())


def test_bad_rates_override_and_unknown_key(tmp_path):
    settings = make_settings(tmp_path, LAKEHOUSE_BAD_RATES="malformed_json=0.01,late_event=0")
    cfg = GeneratorConfig.from_settings(settings)
    assert cfg.bad_rates[BadInput.MALFORMED_JSON] == 0.01
    assert cfg.bad_rates[BadInput.LATE] == 0.0
    assert cfg.bad_rates[BadInput.WRONG_TYPE] == 0.002
    batch = generate_day(cfg, DAY)
    assert batch.injected["malformed_json"] == round(0.01 * READINGS)
    assert batch.withheld_late == 0
    with pytest.raises(ValueError, match="bogus_kind"):
        GeneratorConfig.from_settings(make_settings(tmp_path, LAKEHOUSE_BAD_RATES="bogus_kind=0.1"))


# --------------------------------------------------------------------------- late and duplicates


def test_late_events_arrive_next_day_in_hours_00_to_02(written):
    settings, _ = written
    for day in (DAY, DAY + timedelta(days=1)):
        prev_day = day - timedelta(days=1)
        prev_ids = event_ids(line for v in read_hours(settings, prev_day).values() for line in v)
        late_hours = []
        for hour, lines in read_hours(settings, day).items():
            for line in lines:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ts = event.get("event_ts")
                if (
                    isinstance(ts, str)
                    and ts.startswith(prev_day.isoformat())
                    and event["event_id"] not in prev_ids
                ):
                    late_hours.append(hour)
        assert len(late_hours) == expected_count(0.003)
        assert set(late_hours) <= {0, 1, 2}


def test_duplicates_are_byte_identical_and_never_earlier_than_the_original(written):
    settings, _ = written
    hours = read_hours(settings, DAY)
    first_seen: dict[str, tuple[int, int]] = {}
    repeats = []
    for hour in sorted(hours):
        for pos, line in enumerate(hours[hour]):
            if line in first_seen:
                repeats.append((first_seen[line], (hour, pos), line))
            else:
                first_seen[line] = (hour, pos)
    assert repeats
    for (h0, _), (h1, _), line in repeats:
        assert 0 <= h1 - h0 <= 2
        event = json.loads(line)
        assert parse_ts(event["event_ts"]).hour == h0  # the original is in its own hour
    # Cross-interval re-sends are byte-identical to a D-1 line.
    prev_lines = {line for lines in read_hours(settings, PREV).values() for line in lines}
    resent = [line for line in first_seen if line in prev_lines]
    assert resent
    assert all(json.loads(line)["event_ts"].startswith(PREV.isoformat()) for line in resent)


# --------------------------------------------------------------------------- clean signal


def test_clean_events_follow_the_contract():
    cfg = tiny_config(bad_rates=dict.fromkeys(BadInput, 0.0))
    batch = generate_day(cfg, DAY)
    events = [json.loads(line) for lines in batch.files.values() for line in lines]
    assert len(events) == READINGS
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == READINGS
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    per_device = defaultdict(list)
    for hour, lines in batch.files.items():
        for line in lines:
            e = json.loads(line)
            assert list(e)[:4] == ["event_id", "device_id", "sensor_type", "event_ts"]
            assert TS_RE.match(e["event_ts"])
            ts = parse_ts(e["event_ts"])
            assert ts.date() == DAY
            assert ts.hour == hour
            sensor = SENSOR_TYPES[e["sensor_type"]]
            assert e["unit"] == sensor.unit
            assert sensor.min_valid <= e["value"] <= sensor.max_valid
            assert round(e["value"], sensor.decimals) == e["value"]
            assert isinstance(e["battery_pct"], int)
            assert 20 <= e["battery_pct"] <= 100
            per_device[e["device_id"]].append(e)
    assert len(per_device) == DEVICES
    for series in per_device.values():
        assert len(series) == 86_400 // READING_SECONDS
        millis = [
            (parse_ts(e["event_ts"]) - datetime(2026, 1, 5, tzinfo=UTC))
            // timedelta(milliseconds=1)
            for e in series
        ]
        offsets = {m % (READING_SECONDS * 1000) for m in millis}
        assert len(offsets) == 1
        assert offsets.pop() < 10_000
        battery = [e["battery_pct"] for e in series]
        drops = sum(1 for a, b in itertools.pairwise(battery) if b < a)
        rises = sum(1 for a, b in itertools.pairwise(battery) if b > a)
        assert rises <= 1
        assert drops <= 3


def test_daily_cycle_peaks_in_the_afternoon():
    cfg = tiny_config(
        devices=10,
        bad_rates=dict.fromkeys(BadInput, 0.0),
        spikes_per_device_day=0.0,
        drifts_per_device_day=0.0,
        stucks_per_device_day=0.0,
    )
    batch = generate_day(cfg, DAY)
    for sensor_type in ("temperature", "humidity", "co2"):
        afternoon, night = [], []
        for e in batch.valid_events:
            if e["sensor_type"] == sensor_type:
                hour = parse_ts(e["event_ts"]).hour
                if 13 <= hour < 17:
                    afternoon.append(e["value"])
                elif 1 <= hour < 5:
                    night.append(e["value"])
        assert sum(afternoon) / len(afternoon) > sum(night) / len(night), sensor_type


def test_days_and_seeds_are_independent():
    cfg = tiny_config()
    day1 = generate_day(cfg, DAY)
    again = generate_day(cfg, DAY)
    assert day1.files == again.files
    assert day1.ground_truth == again.ground_truth
    other_day = generate_day(cfg, DAY + timedelta(days=1))
    values1 = [e["value"] for e in day1.valid_events if e["event_ts"].startswith(str(DAY))]
    values2 = [e["value"] for e in other_day.valid_events if e["event_ts"].startswith("2026-01-06")]
    assert values1[:200] != values2[:200]
    # More devices leave the existing devices' readings unchanged.
    bigger = generate_day(tiny_config(devices=DEVICES + 3), DAY)
    ids = {e["event_id"]: e["value"] for e in bigger.valid_events}
    shared = [e for e in day1.valid_events if e["event_id"] in ids]
    assert len(shared) > READINGS // 2
    assert all(ids[e["event_id"]] == e["value"] for e in shared)


# --------------------------------------------------------------------------- anomalies


def test_ground_truth_labels_delivered_valid_events(written):
    settings, _ = written
    loc = locations(settings)
    for day in (PREV, DAY, DAY + timedelta(days=1)):
        uri = f"{loc.raw_ground_truth}/event_date={day.isoformat()}/part-00000.jsonl.gz"
        labels = [
            json.loads(x) for x in gzip.decompress(storage.read_bytes(settings, uri)).splitlines()
        ]
        assert labels
        known = registry_of(settings)
        valid = {}
        for hour, lines in read_hours(settings, day).items():
            for line in lines:
                if classify(line, hour, day, known) == "valid":
                    event = json.loads(line)
                    valid[event["event_id"]] = event
        for label in labels:
            assert set(label) == {"event_id", "device_id", "event_ts", "kind"}
            assert label["kind"] in {k.value for k in AnomalyKind}
            event = valid[label["event_id"]]
            assert (event["device_id"], event["event_ts"]) == (
                label["device_id"],
                label["event_ts"],
            )
            assert label["event_ts"].startswith(day.isoformat())
        assert 0.002 < len(labels) / READINGS < 0.1


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    out, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - start))
            start = None
    return out


def test_anomalies_have_realistic_sizes():
    quiet = dict.fromkeys(BadInput, 0.0)
    cfg = tiny_config(bad_rates=quiet, drifts_per_device_day=0.5, stucks_per_device_day=1.0)
    clean_cfg = replace(
        cfg, spikes_per_device_day=0.0, drifts_per_device_day=0.0, stucks_per_device_day=0.0
    )
    noise = {d.device_id: d.noise for d in device_registry(cfg)}
    seen: Counter[str] = Counter()
    per_hour = 3600 // READING_SECONDS
    for k in range(3):
        day = DAY + timedelta(days=k)
        batch: DayBatch = generate_day(cfg, day)
        clean = generate_day(clean_cfg, day)
        assert not clean.ground_truth
        kinds = {g["event_id"]: g["kind"] for g in batch.ground_truth}
        series = defaultdict(list)  # device -> [(event, clean value, kind)]
        clean_value = {e["event_id"]: e["value"] for e in clean.valid_events}
        for e in batch.valid_events:
            if e["event_ts"].startswith(day.isoformat()):
                series[e["device_id"]].append(
                    (e, clean_value[e["event_id"]], kinds.get(e["event_id"]))
                )
        for device, rows in series.items():
            sigma = noise[device]
            sensor = SENSOR_TYPES[rows[0][0]["sensor_type"]]
            tol = 0.6 * 10**-sensor.decimals / sigma + 0.05  # rounding, in sigmas
            for e, _, _ in rows:
                assert sensor.min_valid <= e["value"] <= sensor.max_valid
            for kind in AnomalyKind:
                for start, length in runs([r[2] == kind.value for r in rows]):
                    seen[kind.value] += 1
                    window = rows[start : start + length]
                    dev = [(e["value"] - c) / sigma for e, c, _ in window]
                    if kind is AnomalyKind.SPIKE:
                        assert 1 <= length <= 2
                        assert all(3 - tol <= abs(x) <= 6 + tol for x in dev), dev
                    elif kind is AnomalyKind.DRIFT:
                        assert 2 * per_hour <= length <= 6 * per_hour
                        assert 3 - tol <= abs(dev[-1]) <= 6 + tol
                        assert abs(dev[0]) <= 6 / (2 * per_hour) + tol
                        assert abs(dev[length // 2]) < abs(dev[-1])
                    else:
                        assert (
                            round(20 / 5) <= length <= round(60 / 5)
                        )  # 20-60 min of 5-min readings
                        anchor = rows[start - 1][0]["value"]
                        assert rows[start - 1][2] is None
                        assert all(e["value"] == anchor for e, _, _ in window)
    assert set(seen) == {k.value for k in AnomalyKind}


def test_default_day_shape_and_speed():
    batch = generate_day(GeneratorConfig(seed=3), DAY)  # 40 devices, 60 s readings
    events = 40 * 1440
    assert 0.01 < len(batch.ground_truth) / events < 0.06
    assert {g["kind"] for g in batch.ground_truth} == {k.value for k in AnomalyKind}
    assert batch.injected["malformed_json"] == round(0.002 * events)
    assert batch.injected["late_event"] == round(0.003 * events)


def test_invalid_keys_cover_blank_whitespace_and_invisible_ids_and_stale_is_a_clock_reset():
    cfg = tiny_config().with_rates(invalid_key=0.05, stale_timestamp=0.02)
    batch = generate_day(cfg, DAY)
    events = []
    for lines in batch.files.values():
        for line in lines:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    keys = [
        e[k]
        for e in events
        for k in ("event_id", "device_id")
        if isinstance(e.get(k), str) and not visible_key(e[k])
    ]
    assert len(keys) == batch.injected["invalid_key"] == expected_count(0.05)
    assert "" in keys
    assert any(k.strip() == "" and k != "" for k in keys), "no whitespace-only key"
    # Real ids with a zero-width space, a no-break space or a tab: they differ only invisibly.
    assert any(c in k and k.strip(" \t\u00a0\u200b") for k in keys for c in "\u200b\u00a0\t")
    stale = [e for e in events if isinstance(e.get("event_ts"), str) and e["event_ts"] < "1971"]
    assert len(stale) == batch.injected["stale_timestamp"] == expected_count(0.02)
