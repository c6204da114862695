"""The watchdog's judgement of pods, on pod objects shaped as `kubectl get pods -o json` returns
them (status fields as the kubelet reports ImagePullBackOff, CrashLoopBackOff, Unschedulable)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cluster_tools import ROOT

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


def _load() -> Any:
    spec = importlib.util.spec_from_file_location(
        "cluster_watch", ROOT / "scripts/cluster_watch.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


watch = _load()


def pod(
    name: str,
    *,
    age: float = 30,
    phase: str = "Running",
    waiting: str | None = None,
    init_waiting: str | None = None,
    ready: bool = False,
    unschedulable: str | None = None,
    restarts: int = 5,
) -> dict[str, Any]:
    created = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        )

    def status(container: str, reason: str | None) -> dict[str, Any]:
        state = {"waiting": {"reason": reason, "message": "..."}} if reason else {"running": {}}
        return {
            "name": container,
            "image": f"lakehouse/{container}:0.1.0",
            "state": state,
            "restartCount": restarts,
        }

    body: dict[str, Any] = {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "conditions": conditions},
    }
    if not unschedulable:
        body["status"]["containerStatuses"] = [status("main", waiting)]
        if init_waiting:
            body["status"]["initContainerStatuses"] = [status("init", init_waiting)]
    return body


def test_image_not_loaded_is_named_at_once_with_the_fix() -> None:
    found = watch.problems([pod("lakehouse-mlflow-0", age=5, waiting="ImagePullBackOff")], NOW)
    assert len(found) == 1
    assert found[0].startswith("pod lakehouse-mlflow-0: container main ImagePullBackOff")
    assert "lakehouse/main:0.1.0" in found[0]
    assert "make images load" in found[0]


def test_a_public_image_the_node_cannot_pull_is_not_sent_to_make_images() -> None:
    body = pod("lakehouse-minio-0", age=5, waiting="ErrImagePull")
    body["status"]["containerStatuses"][0]["image"] = "quay.io/minio/minio:RELEASE.2025"
    (found,) = watch.problems([body], NOW)
    assert "quay.io/minio/minio:RELEASE.2025" in found
    assert "make images" not in found
    assert "registry" in found
    # kind load stores project images as docker.io/lakehouse/...: still ours.
    body["status"]["containerStatuses"][0]["image"] = "docker.io/lakehouse/spark-operator:0.1.0"
    (found,) = watch.problems([body], NOW)
    assert "make images load" in found


def test_crash_loop_in_an_init_container_is_named() -> None:
    found = watch.problems([pod("p", phase="Pending", init_waiting="CrashLoopBackOff")], NOW)
    assert found == [
        "pod p: container init CrashLoopBackOff, 5 restarts (image lakehouse/init:0.1.0): "
        "the container keeps exiting: `make logs` shows why"
    ]


def test_a_container_that_crashed_twice_at_start_up_gets_more_time() -> None:
    """An init container that exits while the database role it waits for is being created is
    restarted by Kubernetes: not stuck yet (seen on the kind cluster: wait-for-migrations)."""
    early = pod("p", phase="Pending", init_waiting="CrashLoopBackOff", restarts=2)
    assert watch.problems([early], NOW) == []
    stuck = pod("p", phase="Pending", init_waiting="CrashLoopBackOff", restarts=3)
    assert len(watch.problems([stuck], NOW)) == 1


def test_missing_secret_key_is_named() -> None:
    found = watch.problems([pod("p", phase="Pending", waiting="CreateContainerConfigError")], NOW)
    assert len(found) == 1
    assert "CreateContainerConfigError" in found[0]


def test_healthy_and_starting_pods_are_not_problems() -> None:
    pods = [
        pod("ready", ready=True),
        pod("starting", age=20, phase="Pending", waiting="ContainerCreating"),
        pod("done", phase="Succeeded", waiting=None),
        pod("young-unschedulable", age=30, phase="Pending", unschedulable="0/1 nodes"),
    ]
    assert watch.problems(pods, NOW) == []


def test_unschedulable_is_reported_after_its_short_limit() -> None:
    message = "0/1 nodes are available: 1 Insufficient memory."
    found = watch.problems(
        [pod("spark-driver", age=91, phase="Pending", unschedulable=message)], NOW
    )
    assert len(found) == 1
    assert found[0].startswith("pod spark-driver: unschedulable for 91s: 0/1 nodes")
    assert "Docker more memory" in found[0]


def test_pending_too_long_names_the_waiting_reason() -> None:
    slow = pod("pg-0", age=601, phase="Pending", waiting="ContainerCreating")
    assert watch.problems([slow], NOW) == [
        "pod pg-0: Pending for 601s (ContainerCreating): `make status`, `make logs`"
    ]
    assert watch.problems([slow], NOW, pending_seconds=700) == []


def test_one_line_per_stuck_container_not_also_a_pending_line() -> None:
    stuck = pod("p", age=900, phase="Pending", waiting="ErrImagePull")
    found = watch.problems([stuck], NOW)
    assert len(found) == 1
    assert "ErrImagePull" in found[0]


def test_settled_means_ready_or_finished() -> None:
    assert watch.is_settled(pod("a", ready=True))
    assert watch.is_settled(pod("b", phase="Succeeded"))
    assert watch.is_settled(pod("c", phase="Failed"))
    assert not watch.is_settled(pod("d"))
    assert not watch.is_settled(pod("e", phase="Pending", waiting="ContainerCreating"))


def test_job_state_from_conditions() -> None:
    def job(*conditions: tuple[str, str]) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}

    assert watch.job_state({"status": {}}) == "running"
    assert watch.job_state(job(("SuccessCriteriaMet", "True"), ("Complete", "True"))) == "complete"
    assert watch.job_state(job(("FailureTarget", "True"), ("Failed", "True"))) == "failed"
    assert watch.job_state(job(("Failed", "False"))) == "running"


def test_verdict_once_fails_on_a_stuck_pod_and_passes_otherwise() -> None:
    stuck = pod("p", waiting="ImagePullBackOff")
    code, lines = watch.verdict([stuck, pod("q", ready=True)], now=NOW, once=True)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("pod p:")
    # Starting pods are fine for one look, whatever they still wait for.
    assert watch.verdict(
        [pod("s", phase="Pending", waiting="ContainerCreating")], now=NOW, once=True
    ) == (0, [])


def test_verdict_waits_until_every_pod_is_settled_then_until_the_deadline() -> None:
    starting = pod("s", phase="Pending", waiting="ContainerCreating")
    assert watch.verdict([starting, pod("r", ready=True)], now=NOW) is None
    assert watch.verdict([], now=NOW) is None  # nothing deployed yet
    assert watch.verdict([pod("r", ready=True), pod("j", phase="Succeeded")], now=NOW) == (
        0,
        ["all 2 pods ready or completed"],
    )
    code, lines = watch.verdict([starting, pod("r", ready=True)], now=NOW, timed_out=True)
    assert code == 1
    assert lines == ["pods s not done in time: `make status`"]


def test_verdict_follows_only_the_jobs_pods_and_its_conditions() -> None:
    mine = pod("ingest-abc", phase="Running")
    mine["metadata"]["labels"] = {"job-name": "ingest"}
    other = pod("other", waiting="CrashLoopBackOff")
    running: dict[str, Any] = {"status": {}}
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert watch.verdict([mine, other], now=NOW, job="ingest", job_object=running) is None
    assert watch.verdict([mine, other], now=NOW, job="ingest", job_object=done) == (
        0,
        ["job ingest complete"],
    )
    assert watch.verdict([mine], now=NOW, job="ingest", job_object=failed)[0] == 1
    mine["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ErrImagePull"}}
    assert watch.verdict([mine], now=NOW, job="ingest", job_object=running)[0] == 1


def test_cli_with_the_pinned_kubectl_and_no_api_server(tmp_path: Path) -> None:
    """The command line as scripts/cluster.sh runs it: one look at a cluster that does not answer
    is no verdict (exit 0); waiting for one that never answers ends at the timeout (exit 1)."""
    kubectl = ROOT / ".tools/bin/kubectl"
    if not kubectl.exists():
        pytest.skip("kubectl not built here (make preflight or bash scripts/cluster.sh tools)")
    kubeconfig = tmp_path / "kubeconfig"
    # Port 1 on loopback: nothing listens there.
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    base = [sys.executable, str(ROOT / "scripts/cluster_watch.py"), "--kubectl", str(kubectl)]
    base += ["--kubeconfig", str(kubeconfig)]
    once = subprocess.run([*base, "--once"], capture_output=True, text=True, timeout=60)
    assert once.returncode == 0
    assert "watchdog: warning: kubectl get pods" in once.stderr
    wait = subprocess.run(
        [*base, "--timeout", "1", "--interval", "0.2"], capture_output=True, text=True, timeout=60
    )
    assert wait.returncode == 1
    assert "no answer from the cluster for 1s" in wait.stderr
