"""Bad raw objects in the real object store: not gzip, truncated (a killed upload), empty, and a
foreign object with invalid UTF-8 and a line over 1 MB. Each is rejected or quarantined with a
reason, the other objects of the day still load, and the counts reconcile (summary.json)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from datetime import date

import pytest
from services_tools import ROOT, delta_rows, make_scenario

from lakehouse.generator import GeneratorConfig, generate_day
from lakehouse.storage import read_bytes, write_bytes
from lakehouse.tables import hour_uri, join_uri, locations

DAY = date(2026, 2, 2)


def run_stages(scenario, stages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "run", "--start", DAY.isoformat(),
         "--stages", stages],
        env=scenario.env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def damaged(profile, run_tag, tmp_path_factory):
    scenario = make_scenario(profile, run_tag, "bad_objects", tmp_path_factory.mktemp("bad"))
    s = scenario.settings
    proc = run_stages(scenario, "ingest")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    batch = generate_day(GeneratorConfig.from_settings(s), DAY)

    write_bytes(s, hour_uri(s, DAY, 3), b"this object is not gzip at all\n")
    five = hour_uri(s, DAY, 5)
    data = read_bytes(s, five)
    write_bytes(s, five, data[: len(data) // 2])  # a killed upload
    day_prefix = join_uri(locations(s).raw_events, f"ingest_date={DAY}")
    write_bytes(s, join_uri(day_prefix, "ingest_hour=06", "empty.jsonl.gz"), b"")
    known = batch.valid_events[0]
    odd = json.dumps({**known, "event_id": "utf8-bad", "unit": "degC"}).encode()
    odd = odd.replace(b'"degC"', b'"deg\xffC"')
    too_long = json.dumps({**known, "event_id": "too-long", "unit": "u" * (1024 * 1024 + 1)})
    write_bytes(
        s,
        join_uri(day_prefix, "ingest_hour=07", "foreign.jsonl.gz"),
        gzip.compress(odd + b"\n" + too_long.encode() + b"\n"),
    )
    proc = run_stages(scenario, "bronze,silver")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(s.summary_path.read_text())
    return scenario, batch, summary


def test_counts_reconcile_and_name_what_was_lost(damaged) -> None:
    _, batch, summary = damaged
    assert summary["reconciled"] is True
    bronze = summary["totals"]["bronze"]
    assert bronze["unreadable_objects"] == 2
    assert bronze["empty_objects"] == 1
    assert bronze["manifest_lines_unreadable"] == len(batch.files[3]) + len(batch.files[5])
    assert bronze["unlisted_lines"] == 2
    expected_lines = sum(len(v) for h, v in batch.files.items() if h not in (3, 5)) + 2
    assert bronze["raw_lines"] == expected_lines
    assert bronze["bronze_rows"] == expected_lines + 2  # one row per unreadable object


def test_each_problem_is_quarantined_with_its_reason(damaged) -> None:
    scenario, _, _ = damaged
    rows = delta_rows(scenario.settings, locations(scenario.settings).silver_quarantine)
    reasons = Counter(reason for r in rows for reason in r["reasons"])
    assert reasons["unreadable_file"] == 2
    assert reasons["invalid_utf8"] == 1
    assert reasons["line_too_long"] == 1


def test_other_objects_still_load(damaged) -> None:
    scenario, batch, _ = damaged
    valid = {e["event_id"] for e in batch.valid_events}
    elsewhere = set()
    for hour, lines in batch.files.items():
        if hour in (3, 5):
            continue
        for line in lines:
            try:
                event_id = json.loads(line).get("event_id")
            except (json.JSONDecodeError, AttributeError):
                continue
            if event_id in valid:
                elsewhere.add(event_id)
    ids = {
        r["event_id"]
        for r in delta_rows(scenario.settings, locations(scenario.settings).silver_events)
    }
    assert elsewhere
    assert elsewhere <= ids <= valid
