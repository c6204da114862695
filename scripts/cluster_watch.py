"""Watchdog of the lakehouse on the laptop cluster (scripts/cluster.sh; standard library only).

`helm --wait` sits out its whole timeout when a pod can never start. This fails at once instead,
naming the pod, the reason and what to do: an image that is not in the node (ImagePullBackOff:
`make load`), a crash loop (`make logs`), a pod the scheduler cannot place (Docker's memory/CPU),
or one Pending for too long.

    cluster_watch.py --once            one look: exit 1 naming every stuck pod, else 0
    cluster_watch.py --job NAME        until Job NAME completes (exit 0) or fails (exit 1)
    cluster_watch.py [--timeout S]     until every pod is ready or has completed
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# Image problems get a hint that depends on whose image it is (image_hint); the rest by reason.
IMAGE_REASONS = {"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull"}
HINTS = {
    "InvalidImageName": "the image reference is malformed: check the chart's image values",
    "CrashLoopBackOff": "the container keeps exiting: `make logs` shows why",
    "CreateContainerConfigError": "a referenced ConfigMap/Secret or key is missing",
    "CreateContainerError": "the runtime cannot create the container: `make status`",
    "RunContainerError": "the runtime cannot start the container: `make logs`",
}
# A container that crashed fewer times than this is still given a chance: at start-up a pod
# often exits while what it waits for (a database role, migrations) is being created, and
# Kubernetes restarts it (back-off 10 s, 20 s, 40 s: about 70 s for three restarts).
CRASH_LOOP_RESTARTS = 3
# Unschedulable pods are reported quickly (kind has no autoscaler: nothing will change); other
# Pending pods (images being pulled, volumes being bound) get longer.
UNSCHEDULABLE_SECONDS = 90.0
PENDING_SECONDS = 600.0


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _statuses(pod: dict[str, Any]) -> Iterable[dict[str, Any]]:
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def is_project_image(image: str) -> bool:
    """lakehouse/<name>:<tag> as `make images` tags it; kind load stores it as docker.io/..."""
    return image.removeprefix("docker.io/").startswith("lakehouse/")


def image_hint(reason: str, image: str) -> str:
    """What to do about an image the node does not have: project images are built and loaded
    here; a public one is pulled by the node from its registry, which `make images` cannot help."""
    if is_project_image(image):
        return "the image is not in the kind node: `make images load`"
    if reason == "ErrImageNeverPull":
        return (
            f"pull policy Never and the node does not have {image}: `docker pull {image}` "
            "then `kind load docker-image` it, or turn off the chart option that uses it"
        )
    return (
        f"the node cannot pull {image}: check the node reaches its registry (proxy, "
        "credentials), or `docker pull` and `kind load docker-image` it, or turn off the chart "
        "option that uses it"
    )


def waiting_problems(pod: dict[str, Any]) -> list[str]:
    """One line per container waiting for a reason that will not resolve by itself."""
    name = pod["metadata"]["name"]
    out = []
    for cs in _statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        image = cs.get("image", "?")
        hint = image_hint(reason, image) if reason in IMAGE_REASONS else HINTS.get(reason)
        if reason == "CrashLoopBackOff" and cs.get("restartCount", 0) < CRASH_LOOP_RESTARTS:
            continue
        if hint:
            restarts = f", {cs['restartCount']} restarts" if reason == "CrashLoopBackOff" else ""
            out.append(
                f"pod {name}: container {cs['name']} {reason}{restarts} (image {image}): {hint}"
            )
    return out


def pending_problem(
    pod: dict[str, Any],
    now: datetime,
    unschedulable_seconds: float = UNSCHEDULABLE_SECONDS,
    pending_seconds: float = PENDING_SECONDS,
) -> str | None:
    """A line naming ``pod`` if it has been Pending longer than allowed, else None."""
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return None
    name = pod["metadata"]["name"]
    age = (now - _timestamp(pod["metadata"]["creationTimestamp"])).total_seconds()
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            if age > unschedulable_seconds:
                return (
                    f"pod {name}: unschedulable for {age:.0f}s: {cond.get('message', '')} "
                    "(give Docker more memory/CPUs, or lower the chart's requests)"
                )
            return None
    if age > pending_seconds:
        waiting = sorted(
            {
                ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
                for cs in _statuses(pod)
            }
            - {""}
        )
        detail = f" ({', '.join(waiting)})" if waiting else ""
        return f"pod {name}: Pending for {age:.0f}s{detail}: `make status`, `make logs`"
    return None


def problems(
    pods: list[dict[str, Any]],
    now: datetime,
    unschedulable_seconds: float = UNSCHEDULABLE_SECONDS,
    pending_seconds: float = PENDING_SECONDS,
) -> list[str]:
    """Every stuck pod of ``pods`` (items of ``kubectl get pods -o json``), one line each."""
    out: list[str] = []
    for pod in pods:
        out.extend(waiting_problems(pod))
        line = pending_problem(pod, now, unschedulable_seconds, pending_seconds)
        if line and not waiting_problems(pod):
            out.append(line)
    return out


def is_settled(pod: dict[str, Any]) -> bool:
    """Ready, or finished: a Job pod that succeeded, or one that failed and was retried (helm
    --wait-for-jobs and the Job's own status judge the Job)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_state(job: dict[str, Any]) -> str:
    """ "complete", "failed" or "running" from a Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "complete"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


class Cluster:
    def __init__(self, kubectl: str, kubeconfig: str, namespace: str) -> None:
        self.base = [kubectl, "--kubeconfig", kubeconfig, "--namespace", namespace]

    def get(self, *what: str) -> dict[str, Any]:
        proc = subprocess.run(
            [*self.base, "get", *what, "-o", "json"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl get {' '.join(what)}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)


def verdict(
    pods: list[dict[str, Any]],
    *,
    now: datetime,
    once: bool = False,
    job: str | None = None,
    job_object: dict[str, Any] | None = None,
    timed_out: bool = False,
    unschedulable_seconds: float = UNSCHEDULABLE_SECONDS,
    pending_seconds: float = PENDING_SECONDS,
) -> tuple[int, list[str]] | None:
    """One look's outcome: (exit code, lines to report), or None to look again later."""
    if job:
        pods = [p for p in pods if (p["metadata"].get("labels") or {}).get("job-name") == job]
    found = problems(pods, now, unschedulable_seconds, pending_seconds)
    if found:
        return 1, found
    if once:
        return 0, []
    if job:
        state = job_state(job_object or {})
        if state == "complete":
            return 0, [f"job {job} complete"]
        if state == "failed":
            return 1, [f"job {job} failed: `make logs COMPONENT=stage-ingest`"]
    elif pods and all(is_settled(p) for p in pods):
        return 0, [f"all {len(pods)} pods ready or completed"]
    if timed_out:
        waiting = [p["metadata"]["name"] for p in pods if not is_settled(p)]
        what = f"job {job}" if job else f"pods {', '.join(waiting) or '(none yet)'}"
        return 1, [f"{what} not done in time: `make status`"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="lakehouse")
    parser.add_argument("--once", action="store_true", help="look once and exit")
    parser.add_argument("--job", help="follow this Job until it completes or fails")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--unschedulable-seconds", type=float, default=UNSCHEDULABLE_SECONDS)
    parser.add_argument("--pending-seconds", type=float, default=PENDING_SECONDS)
    args = parser.parse_args(argv)
    cluster = Cluster(args.kubectl, args.kubeconfig, args.namespace)
    deadline = time.monotonic() + args.timeout
    while True:
        timed_out = time.monotonic() > deadline
        try:
            pods = cluster.get("pods")["items"]
            job = cluster.get("job", args.job) if args.job else None
        except RuntimeError as exc:
            # The API server not answering for a moment is no verdict on the pods.
            print(f"watchdog: warning: {exc}", file=sys.stderr)
            if args.once:
                return 0
            if timed_out:
                print(
                    f"watchdog: no answer from the cluster for {args.timeout:.0f}s", file=sys.stderr
                )
                return 1
        else:
            outcome = verdict(
                pods,
                now=datetime.now(UTC),
                once=args.once,
                job=args.job,
                job_object=job,
                timed_out=timed_out,
                unschedulable_seconds=args.unschedulable_seconds,
                pending_seconds=args.pending_seconds,
            )
            if outcome is not None:
                code, lines = outcome
                for line in lines:
                    print(f"watchdog: {line}", file=sys.stderr if code else sys.stdout)
                return code
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
