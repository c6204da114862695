"""Writers that die or collide, through the services profile (S3 tables, PostgreSQL catalog).

* Killed writes: the Spark process (driver and JVM, the whole process group) gets SIGKILL at a
  random moment of a silver or gold write, over several trials; after each, a rerun of the
  interval must leave exactly the tables of the clean run: no partial commit, no loss, no
  duplicate.
* Concurrent runs: a second run of the same interval, started as the first one's bronze begins,
  waits for it (ingest and bronze share the raw day's lock) and says so; both succeed and leave
  exactly the tables of one clean run.

Trials and the random seed are printed; set LAKEHOUSE_KILL_SEED to replay a sequence and
LAKEHOUSE_KILL_TRIALS to change how many trials run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from services_tools import (
    END,
    ROOT,
    RUN_TIMEOUT,
    START,
    Scenario,
    all_tables,
    make_scenario,
    pipeline_cmd,
    run_pipeline,
)

from lakehouse.storage import filesystem
from lakehouse.tables import locations

SEED = int(os.environ.get("LAKEHOUSE_KILL_SEED", random.SystemRandom().randrange(10**6)))
TRIALS = int(os.environ.get("LAKEHOUSE_KILL_TRIALS", "3"))
KILL_ATTEMPTS = 3  # per trial, each aiming earlier than the last
DAYS = [(START + timedelta(days=i)).isoformat() for i in range((END - START).days)]
# (stage, table whose first new object after the stage began marks its write)
TARGETS = [
    ("silver", "silver_events"),
    ("silver", "silver_quarantine"),
    ("gold", "gold"),
]


def assert_equals_clean(scenario: Scenario, clean: Scenario, when: str) -> None:
    got = all_tables(scenario.settings, scenario.prefix)
    want = all_tables(clean.settings, clean.prefix)
    assert set(got) == set(want), when
    for name in want:
        assert got[name] == want[name], f"{name} differs from the clean run {when}"


def object_count(scenario: Scenario, prefix_uri: str) -> Callable[[], int]:
    fs, path = filesystem(scenario.settings, prefix_uri)

    def count() -> int:
        fs.invalidate_cache()
        try:
            return len(fs.find(path))
        except FileNotFoundError:
            return 0

    return count


def table_prefix(scenario: Scenario, table: str) -> str:
    loc = locations(scenario.settings)
    if table == "gold":
        return loc.iceberg_warehouse
    return getattr(loc, table)


class Output:
    """Collects a process's output lines in a thread, so the test can watch it while polling."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def kill_during_write(
    scenario: Scenario, table: str, after_line: str | None, delay: float
) -> float | None:
    """Start silver+gold; once ``after_line`` was printed (if given) and a new object shows up
    under ``table``, wait ``delay`` s and SIGKILL the run's process group. Returns the seconds
    from the first new object to the kill, or None when the run had already finished cleanly
    (the write committed within ``delay``)."""
    count = object_count(scenario, table_prefix(scenario, table))
    baseline = None if after_line else count()
    proc = subprocess.Popen(
        pipeline_cmd("--stages", "silver,gold"), env={**scenario.env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    out = Output(proc)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the kill point:\n{out.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the kill point was never reached:\n{out.text()[-3000:]}")
            if baseline is None and after_line in out.text():
                baseline = count()
            if baseline is not None and count() > baseline:
                break
            time.sleep(0.2)
        seen = time.monotonic()
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        killed_after = time.monotonic() - seen
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out.thread.join(timeout=30)
    if proc.returncode == 0:
        return None
    assert proc.returncode == -signal.SIGKILL, out.text()[-3000:]
    return killed_after


def test_killed_silver_and_gold_writes_rerun_to_the_clean_tables(
    profile, run_tag, clean, tmp_path
) -> None:
    scenario = make_scenario(profile, run_tag, "killed", tmp_path / "home")
    setup = run_pipeline(scenario, "--stages", "ingest,bronze")
    assert setup.returncode == 0, setup.stdout[-3000:]
    rng = random.Random(SEED)
    print(f"kill trials: {TRIALS}, seed {SEED} (LAKEHOUSE_KILL_SEED)")
    for trial in range(TRIALS):
        stage, table = TARGETS[trial % len(TARGETS)]
        day = rng.choice(DAYS)
        # The day's write starts after the previous stage-day's line ("<day> <stage> ...").
        after = None if (stage, day) == ("silver", DAYS[0]) else _previous_line(stage, day)
        delay = rng.uniform(0.0, 1.5)
        # A day-2 write lasts a few seconds at this scale; when the run beat the kill, the
        # tables are a finished run's, and the trial aims earlier until the kill lands.
        for _ in range(KILL_ATTEMPTS):
            killed_after = kill_during_write(scenario, table, after, delay)
            if killed_after is not None:
                break
            print(f"trial {trial + 1}: the run finished within {delay:.2f} s; aiming earlier")
            delay /= 4
        else:
            pytest.fail(f"no kill landed in the {stage} write of {table} on {day}")
        print(
            f"trial {trial + 1}: SIGKILL {killed_after:.1f} s into the {stage} write of {table}"
            f" on {day}"
        )
        rerun = run_pipeline(scenario, "--stages", "silver,gold")
        assert rerun.returncode == 0, f"rerun {trial + 1} failed:\n{rerun.stdout[-3000:]}"
        assert_equals_clean(scenario, clean, f"after kill trial {trial + 1} and its rerun")


def _previous_line(stage: str, day: str) -> str:
    """The progress line printed just before ``stage`` starts on ``day`` (silver,gold runs)."""
    if stage == "gold":
        return f"{day} silver"
    return f"{DAYS[DAYS.index(day) - 1]} gold"


def test_two_runs_of_one_interval_at_once_equal_one_run(profile, run_tag, clean, tmp_path) -> None:
    """Run B starts when run A has ingested the first day and begins bronze on it, the moment
    B's ingest (which rewrites that raw day) would pull the objects from under A's bronze. B's
    ingest must wait for A's bronze (they share the "raw" lock); both runs succeed; the tables
    equal one clean run's."""
    scenario = make_scenario(profile, run_tag, "twice", tmp_path / "home")
    cmd = pipeline_cmd("--stages", "ingest,bronze,silver,gold")
    env = {**scenario.env, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}  # no wrapped lines
    options = {"env": env, "cwd": ROOT, "stdout": subprocess.PIPE, "text": True}
    first = subprocess.Popen(cmd, stderr=subprocess.STDOUT, **options)
    first_out = Output(first)
    deadline = time.monotonic() + RUN_TIMEOUT
    while f"{DAYS[0]} ingest " not in first_out.text():
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            pytest.fail(f"the first run never finished ingest:\n{first_out.text()[-3000:]}")
        time.sleep(0.1)
    second = subprocess.Popen(cmd, stderr=subprocess.STDOUT, **options)
    second_out = Output(second)
    for run, out in ((first, first_out), (second, second_out)):
        run.wait(timeout=2 * RUN_TIMEOUT)
        out.thread.join(timeout=30)
        assert run.returncode == 0, out.text()[-3000:]
    waited = [line.strip() for line in second_out.lines if "another run holds" in line]
    print("the second run waited:", *waited, sep="\n  ")
    assert any(line.startswith(f"{DAYS[0]} ingest:") and "|raw'" in line for line in waited), (
        f"the second run's ingest did not wait for the first run's bronze:\n{second_out.text()}"
    )
    assert_equals_clean(scenario, clean, "after two concurrent runs")
