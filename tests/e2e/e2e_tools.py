"""The cluster e2e tier's hands: make targets, kubectl port-forwards, a watch of what the DAG
starts, the Airflow and MLflow REST APIs, and phase timings. Everything reaches the cluster from
outside, as a user does: the kubeconfig `make up` writes, `kubectl port-forward`, public APIs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".cluster"
OUT = STATE / "e2e"
KUBECONFIG = STATE / "kubeconfig"
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
NAMESPACE = "lakehouse"
RELEASE = "lakehouse"
DAG_ID = "lakehouse_end_to_end"
SPARK_GROUP, SPARK_VERSION, SPARK_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


def now() -> datetime:
    return datetime.now(UTC)


def say(text: str) -> None:
    print(f"==> e2e [{now():%H:%M:%S}] {text}", flush=True)


# ---------------------------------------------------------------------------------------------
# Phases: each prints its time and lands in the JSON summary.


def skip_outside_e2e(items: list[Any], folder: str, reason: str) -> None:
    """Mark the tests under ``folder`` skipped unless LAKEHOUSE_E2E=1 (set by the make target)."""
    if os.environ.get("LAKEHOUSE_E2E") == "1":
        return
    import pytest

    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if f"{folder}/" in str(item.fspath):
            item.add_marker(skip)


@dataclass
class Phases:
    rows: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)

    def record(self, report: Any) -> None:
        """A test's outcome (pytest_runtest_logreport): its call, or a failed setup/teardown."""
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.nodeid.split("::")[-1]] = report.outcome

    def finish(self, name: str = "summary") -> None:
        """Write the JSON summary and print each phase's time (pytest_sessionfinish)."""
        if os.environ.get("LAKEHOUSE_E2E") != "1" or not self.rows:
            return
        total = sum(r["seconds"] for r in self.rows)
        path = self.write({"total_seconds": round(total, 1), "tests": self.outcomes}, name)
        say(f"summary: {path} (phases {total:.0f} s)")
        for row in self.rows:
            print(f"    {row['phase']:48} {row['seconds']:>8.1f} s  {row['outcome']}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        say(f"{name} ...")
        started, t0 = now(), time.monotonic()
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        finally:
            seconds = round(time.monotonic() - t0, 1)
            self.rows.append(
                {
                    "phase": name,
                    "seconds": seconds,
                    "outcome": outcome,
                    "started": started.isoformat(),
                }
            )
            say(f"{name}: {outcome} in {seconds:.1f} s")

    def write(self, extra: dict[str, Any], name: str = "summary") -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        body = {"phases": self.rows, **self.facts, **extra}
        stamp = now().strftime("%Y%m%dT%H%M%SZ")
        path = OUT / f"{name}-{stamp}.json"
        text = json.dumps(body, indent=2, default=str) + "\n"
        path.write_text(text)
        (OUT / f"{name}.json").write_text(text)
        return path


def make(target: str, log: Path, timeout: float, **env: str) -> None:
    """`make <target>` as a user runs it, its output shown and kept in ``log``; a failure
    raises with the output's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env}
    tail: list[str] = []
    with log.open("w") as sink:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", target], cwd=ROOT, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            sink.write(line)
            sink.flush()
            print(f"    {line}", end="", flush=True)
            tail = [*tail[-60:], line]
            if time.monotonic() > deadline:
                proc.kill()
                break
        code = proc.wait()
    if code != 0:
        raise AssertionError(f"make {target} failed (exit {code}; log {log}):\n{''.join(tail)}")


def docker(*args: str) -> str:
    """The Docker CLI's standard output; a failing command raises."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


# ---------------------------------------------------------------------------------------------
# kubectl


def kubectl(
    *args: str, check: bool = True, timeout: float = 120, namespace: str = NAMESPACE
) -> str:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--namespace", namespace, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def kubectl_json(*args: str, namespace: str = NAMESPACE) -> Any:
    return json.loads(kubectl(*args, "-o", "json", namespace=namespace))


def secret_data(name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    import base64

    data = kubectl_json("get", "secret", name, namespace=namespace).get("data", {})
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


@contextmanager
def port_forward(
    target: str, remote: int, wait: float = 60, namespace: str = NAMESPACE
) -> Iterator[int]:
    """`kubectl port-forward --address 127.0.0.1 <target> :<remote>`: yields the local port
    kubectl chose; stopped on exit."""
    proc = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--namespace", namespace,
         "port-forward", "--address", "127.0.0.1", target, f":{remote}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port: int | None = None
    deadline = time.monotonic() + wait
    seen = []
    while port is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = _FORWARDING.search(line)
        if match:
            port = int(match.group(1))
    if port is None:
        proc.kill()
        raise AssertionError(f"port-forward {target} :{remote} did not start: {''.join(seen)}")
    # Keep reading kubectl's output so its pipe never fills up.
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def cluster_reader_settings(
    settings_data: dict[str, str], credentials: dict[str, str]
) -> Iterator[Any]:
    """The lakehouse settings of the cluster's ConfigMap and Secret, with the object store and
    the catalog reached through port-forwards: what deltalake and pyiceberg read with."""
    from urllib.parse import urlsplit

    from lakehouse.settings import load_settings

    catalog = urlsplit(settings_data["LAKEHOUSE_CATALOG_URI"].removeprefix("jdbc:"))
    s3 = urlsplit(settings_data["LAKEHOUSE_S3_ENDPOINT"])
    with (
        port_forward(f"svc/{s3.hostname}", s3.port or 80) as s3_port,
        port_forward(f"svc/{catalog.hostname}", catalog.port or 5432) as pg_port,
    ):
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "LAKEHOUSE_CATALOG_USER",
                "LAKEHOUSE_CATALOG_PASSWORD")  # fmt: skip
        env = {
            **settings_data,
            "LAKEHOUSE_HOME": str(OUT / "home"),
            "LAKEHOUSE_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{pg_port}{catalog.path}",
            **{k: credentials[k] for k in keys},
        }
        yield load_settings(env)


# ---------------------------------------------------------------------------------------------
# What the DAG starts, watched from outside: SparkApplications and pods with their timestamps.


@dataclass
class Seen:
    kind: str
    name: str
    labels: dict[str, str]
    created: datetime
    states: list[str] = field(default_factory=list)
    running_at: datetime | None = None
    deleted: bool = False


class Watcher:
    """Watches SparkApplications and pods of the namespace (Kubernetes watch API through the
    kubeconfig) and keeps every state each one went through, so applications the DAG deletes
    on success are still accounted for."""

    def __init__(self) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(KUBECONFIG))
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.seen: dict[tuple[str, str], Seen] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(self._pods,), daemon=True),
            threading.Thread(target=self._loop, args=(self._apps,), daemon=True),
        ]

    def __enter__(self) -> Watcher:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()

    def _loop(self, stream: Callable[[], None]) -> None:
        while not self.stop.is_set():
            try:
                stream()
            except Exception as err:  # a dropped watch is resumed; the state is kept
                print(f"    (watch restarted: {type(err).__name__}: {err})", file=sys.stderr)
                time.sleep(2)

    def _record(self, kind: str, obj: dict[str, Any], state: str, event: str) -> Seen:
        meta = obj["metadata"]
        key = (kind, meta["name"])
        with self.lock:
            seen = self.seen.get(key)
            if seen is None:
                created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
                seen = self.seen[key] = Seen(kind, meta["name"], meta.get("labels") or {}, created)
            if state and (not seen.states or seen.states[-1] != state):
                seen.states.append(state)
            if event == "DELETED":
                seen.deleted = True
            return seen

    def _pods(self) -> None:
        from kubernetes import watch

        for ev in watch.Watch().stream(
            self.core.list_namespaced_pod, NAMESPACE, timeout_seconds=300
        ):
            pod = self.core.api_client.sanitize_for_serialization(ev["object"])
            status = pod.get("status") or {}
            seen = self._record("pod", pod, status.get("phase", ""), ev["type"])
            for cs in status.get("containerStatuses") or []:
                started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
                if started and seen.running_at is None:
                    seen.running_at = datetime.fromisoformat(started.replace("Z", "+00:00"))
            if self.stop.is_set():
                return

    def _apps(self) -> None:
        from kubernetes import watch

        for ev in watch.Watch().stream(
            self.custom.list_namespaced_custom_object,
            SPARK_GROUP, SPARK_VERSION, NAMESPACE, SPARK_PLURAL, timeout_seconds=300,
        ):  # fmt: skip
            app = ev["object"]
            state = ((app.get("status") or {}).get("applicationState") or {}).get("state", "")
            self._record("sparkapplication", app, state, ev["type"])
            if self.stop.is_set():
                return

    def of(self, kind: str, since: datetime) -> list[Seen]:
        with self.lock:
            return sorted(
                (s for (k, _), s in self.seen.items() if k == kind and s.created >= since),
                key=lambda s: s.created,
            )


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# ---------------------------------------------------------------------------------------------
# REST clients


class Airflow:
    """Airflow's public REST API (v2) as the admin user, through a port-forward."""

    def __init__(self, base: str, user: str, password: str) -> None:
        import requests

        self.base = base.rstrip("/")
        self.http = requests.Session()
        token = self.http.post(
            f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        self.http.headers["Accept"] = "application/json"

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"{self.base}/api/v2{path}", params=params, timeout=60)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.http.post(f"{self.base}/api/v2{path}", json=body, timeout=60)
        if r.status_code >= 400:
            raise AssertionError(f"POST {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def try_numbers(self, run_id: str) -> dict[str, int]:
        """Each task's current try number in the run."""
        return {t["task_id"]: t["try_number"] for t in self.task_instances(run_id)}

    def tries(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return self.get(path)["task_instances"]

    def log_text(self, run_id: str, task_id: str, try_number: int) -> str:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.get(path, full_content="true")
        content = body.get("content")
        if isinstance(content, list):  # structured log lines
            return "\n".join(c.get("event", "") if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def wait_finished(self, run_id: str, timeout: float, on_poll: Callable[[], None]) -> str:
        deadline, last = time.monotonic() + timeout, ""
        while True:
            tis = self.task_instances(run_id)
            line = " ".join(f"{t['task_id']}={t['state']}" for t in tis)
            if line != last:
                say(f"run {run_id}: {line}")
                last = line
            state = self.run(run_id)["state"]
            if state in ("success", "failed"):
                return state
            on_poll()
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(10)


class MLflow:
    def __init__(self, base: str) -> None:
        import requests

        self.base = base.rstrip("/")
        self.http = requests.Session()

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"{self.base}/api/2.0/mlflow{path}", params=params, timeout=60)
        r.raise_for_status()
        return r.json()
