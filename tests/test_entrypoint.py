"""The mains pods and SparkApplications run (``python -m <stage module> --start D --end D``),
through the ingest stage: one JSON line per day, one line and exit 1 for bad settings or an
unreachable server, and other failures keep their traceback."""

from __future__ import annotations

import gzip
import json
import socket
from argparse import Namespace
from datetime import date
from pathlib import Path

import pytest

from lakehouse import ingest
from lakehouse.entrypoint import run_stage


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("LAKEHOUSE_CATALOG_URI", "LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_RAW_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_EVENTS_PER_DAY", "300")
    return tmp_path


def test_one_json_line_per_day_with_the_lines_written(home: Path, capsys) -> None:
    assert ingest.main(["--start", "2026-01-05", "--end", "2026-01-07"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["stage"], x["day"]) for x in lines] == [
        ("ingest", "2026-01-05"),
        ("ingest", "2026-01-06"),
    ]
    for line in lines:
        folder = home / "raw" / "iot_events" / f"ingest_date={line['day']}"
        written = sum(
            len(gzip.decompress(p.read_bytes()).splitlines()) for p in folder.rglob("*.gz")
        )
        assert line["raw_lines"] == written > 0


def test_bad_settings_are_one_line(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LAKEHOUSE_LOCK_TIMEOUT_SECONDS", "soon")
    assert ingest.main(["--start", "2026-01-05"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ingest failed: ")
    assert "LAKEHOUSE_LOCK_TIMEOUT_SECONDS" in err
    assert "Traceback" not in err


def test_an_unreachable_catalog_is_one_line_naming_it(home: Path, monkeypatch, capsys) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The writer lock lives in the catalog database, so ingest needs it too.
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", f"jdbc:postgresql://127.0.0.1:{port}/catalog")
    monkeypatch.setenv("LAKEHOUSE_CATALOG_USER", "lakehouse")
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PASSWORD", "not-used")
    assert ingest.main(["--start", "2026-01-05"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"ingest failed: the catalog database 127.0.0.1:{port} (LAKEHOUSE_CATALOG_URI) is "
        "unreachable"
    )
    assert not (home / "raw").exists(), "ingest wrote without holding its lock"


def test_other_failures_keep_their_traceback(home: Path) -> None:
    def broken(ctx):
        raise RuntimeError("a bug, not bad input")

    args = Namespace(start=date(2026, 1, 5), end=date(2026, 1, 6), run_id="r")
    with pytest.raises(RuntimeError, match="a bug"):
        run_stage("ingest", args, broken)
