"""The DAG folder imports without errors, quickly, and without I/O at import time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from dag_tools import DAGS, ROOT

EXPECTED_DAGS = {"lakehouse_end_to_end", "lakehouse_maintenance"}
# Parsing budget of one DAG file once Airflow and the provider are loaded (the DAG processor
# pre-imports them: [dag_processor] parsing_pre_import_modules). Generous for 2 shared cores.
PARSE_SECONDS = 3.0

# Runs in a fresh interpreter: load the libraries the DAG processor has loaded already (Airflow,
# the provider and what the DAG files import from them; croniter, for one, runs a subprocess
# when first imported), then execute each
# DAG file under an audit hook that records file opens (other than Python modules being
# imported), network, databases and subprocesses. Directory listings are not recorded: the import
# system itself lists package folders.
PROBE = textwrap.dedent(
    """
    import json, os, runpy, sys, time
    sys.path.insert(0, {dags!r})
    import airflow.sdk, airflow.providers.cncf.kubernetes.operators.spark_kubernetes, yaml
    import airflow.providers.cncf.kubernetes.operators.pod, pendulum
    from airflow.sdk import CronDataIntervalTimetable, dag  # resolve the lazy names
    MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pth")
    events = []
    active = False
    def hook(event, args):
        if not active:
            return
        if event == "open":
            path = str(args[0])
            if not path.endswith(MODULE_SUFFIXES) and not os.path.isdir(path):
                events.append(f"open {{path}}")
        elif event in ("socket.connect", "socket.getaddrinfo", "subprocess.Popen",
                       "urllib.Request", "sqlite3.connect"):
            events.append(f"{{event}} {{args!r}}"[:200])
    sys.addaudithook(hook)
    seconds = {{}}
    for name in {files!r}:
        active = True
        started = time.perf_counter()
        runpy.run_path(os.path.join({dags!r}, name), run_name="dag_" + name[:-3])
        seconds[name] = time.perf_counter() - started
        active = False
    print(json.dumps({{"seconds": seconds, "events": events}}))
    """
)


def test_dagbag_has_both_dags_and_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_dag_files_import_fast_without_io() -> None:
    files = sorted(p.name for p in DAGS.glob("*.py"))
    assert files == ["lakehouse_end_to_end.py", "lakehouse_maintenance.py"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(dags=str(DAGS), files=files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["events"] == [], "I/O while importing the DAG files"
    slow = {f: s for f, s in result["seconds"].items() if s > PARSE_SECONDS}
    assert not slow, f"DAG files slower than {PARSE_SECONDS}s to parse: {slow}"
    print("parse seconds:", {f: round(s, 3) for f, s in result["seconds"].items()})


def test_helpers_and_templates_are_ignored_by_the_dag_processor() -> None:
    ignored = (DAGS / ".airflowignore").read_text().split()
    for folder in ("lakehouse_dags/", "templates/"):
        assert folder in ignored
