"""The GitOps deploy on kind (scripts/gitops.sh): the Flux objects of deploy/flux adapted to the
in-cluster git server, the credentials command of deploy/README.md, and a wait that follows Flux
until the HelmRelease is Ready at a given git revision, reading what Flux reports.

    python scripts/gitops.py objects --url URL --secret NAME --interval 1m --values F [F ...]
    python scripts/gitops.py secret-command        # the guide's `kubectl create secret` block
    python scripts/gitops.py wait --kubectl K --kubeconfig C --revision SHA [--timeout S]
    python scripts/gitops.py status --kubectl K --kubeconfig C

deploy/flux stays the one definition of the GitRepository and HelmRelease: `objects` changes only
what a kind cluster must (its git URL, credentials, poll interval, extra values files).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FLUX = ROOT / "deploy" / "flux"
GUIDE = ROOT / "deploy" / "README.md"
CHART = "charts/lakehouse"
WATCH = ROOT / "scripts" / "cluster_watch.py"


class GitOpsError(RuntimeError):
    pass


def repo_relative(path: str | Path, root: Path = ROOT) -> str:
    """A values file as Flux names it: relative to the repository root, with a leading ./."""
    resolved = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    try:
        relative = resolved.relative_to(root.resolve())
    except ValueError:
        raise GitOpsError(
            f"{path} is outside the repository: Flux reads values files from git only"
        ) from None
    return f"./{relative.as_posix()}"


def kind_objects(
    url: str, secret: str, interval: str, values_files: Sequence[str], branch: str = "main"
) -> list[dict[str, Any]]:
    """deploy/flux's GitRepository and HelmRelease for a kind cluster: the git server's URL and
    the Secret of its account, a short poll interval, and the cluster's values files on top of
    the GitOps ones (the same files `make up` passes to helm, in the same order)."""
    repo = yaml.safe_load((FLUX / "gitrepository.yaml").read_text())
    release = yaml.safe_load((FLUX / "helmrelease.yaml").read_text())
    repo["spec"].update(url=url, interval=interval, secretRef={"name": secret})
    repo["spec"]["ref"] = {"branch": branch}
    chart = release["spec"]["chart"]["spec"]
    extra = [repo_relative(f) for f in values_files]
    chart["valuesFiles"] = [
        *chart["valuesFiles"],
        *(f for f in extra if f not in chart["valuesFiles"]),
    ]
    return [repo, release]


def secret_command(guide: str) -> str:
    """The shell block of deploy/README.md that creates the namespace and the credentials
    Secret: gitops.sh runs exactly what the guide tells a user to run."""
    blocks = re.findall(r"```bash\n(.*?)```", guide, re.DOTALL)
    found = [b for b in blocks if "create secret generic lakehouse-credentials" in b]
    if len(found) != 1:
        raise GitOpsError(f"{GUIDE}: expected one block creating the Secret, found {len(found)}")
    return found[0]


def condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            return c
    return {}


def built_from(chart_version: str, revision: str) -> bool:
    """Whether a chart version is the one source-controller builds from git commit REVISION
    with reconcileStrategy Revision: the chart's version, then as build metadata the commit's
    first 12 hex digits and, when valuesFiles are set, the HelmChart's generation
    (0.1.0+0123456789ab.1); HelmRelease.status.lastAttemptedRevision names it."""
    return re.search(rf"\+{re.escape(revision[:12])}(\.[0-9]+)?$", chart_version) is not None


def release_state(release: dict[str, Any], revision: str) -> tuple[str, str]:
    """('ready' | 'failed' | 'pending', message) of a HelmRelease for git commit REVISION.
    Ready counts only once Flux attempted the chart built from that commit; a failure is
    reported once Flux gives up on it (Stalled)."""
    status = release.get("status", {})
    attempted = status.get("lastAttemptedRevision", "")
    ready = condition(release)
    stalled = condition(release, "Stalled")
    message = ready.get("message", "")
    if not built_from(attempted, revision):
        return "pending", f"waiting for commit {revision[:12]} (last attempted: {attempted or '-'})"
    current = ready.get("observedGeneration") == release["metadata"].get("generation")
    if ready.get("status") == "True" and current:
        return "ready", message
    if stalled.get("status") == "True":
        return "failed", stalled.get("message", message)
    return "pending", f"{ready.get('reason', 'Progressing')}: {message}"


class Kubectl:
    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        self.base = [kubectl, "--kubeconfig", kubeconfig]

    def json(self, *args: str) -> dict[str, Any]:
        out = subprocess.run(
            [*self.base, *args, "-o", "json"], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            return {}
        return json.loads(out.stdout)


def source_line(kube: Kubectl) -> str:
    repo = kube.json("--namespace", "flux-system", "get", "gitrepository", "lakehouse")
    artifact = repo.get("status", {}).get("artifact", {}).get("revision", "-")
    ready = condition(repo)
    return f"GitRepository {ready.get('status', '?')} {artifact} {ready.get('message', '')[:120]}"


def wait(kube: Kubectl, revision: str, timeout: float, watch_args: Sequence[str]) -> int:
    """Follow the GitRepository and HelmRelease until the release is Ready at REVISION, printing
    each change; the pod watchdog runs beside it and stops the wait at a stuck pod."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last = ""
    while time.monotonic() < deadline:
        release = kube.json("--namespace", "flux-system", "get", "helmrelease", "lakehouse")
        state, message = (
            release_state(release, revision) if release else ("pending", "no HelmRelease")
        )
        line = f"{source_line(kube)} | HelmRelease {state}: {message[:300]}"
        if line != last:
            print(f"==> gitops: [{time.monotonic() - started:5.0f} s] {line}", flush=True)
            last = line
        if state == "ready":
            return 0
        if state == "failed":
            print(f"error: Flux gave up on revision {revision[:12]}: {message}", file=sys.stderr)
            return 1
        if (
            watch_args
            and subprocess.run([sys.executable, str(WATCH), *watch_args, "--once"]).returncode
        ):
            print("error: a lakehouse pod is stuck (named above)", file=sys.stderr)
            return 1
        time.sleep(5)
    print(
        f"error: the HelmRelease was not Ready at {revision[:12]} within {timeout:.0f} s: {last}",
        file=sys.stderr,
    )
    return 1


def status(kube: Kubectl) -> None:
    for kind, name in (
        ("gitrepository", "lakehouse"),
        ("helmchart", "flux-system-lakehouse"),
        ("helmrelease", "lakehouse"),
    ):
        obj = kube.json("--namespace", "flux-system", "get", kind, name)
        if not obj:
            print(f"{kind}/{name}: absent")
            continue
        for c in obj.get("status", {}).get("conditions", []):
            reason, message = c.get("reason", ""), c.get("message", "")
            print(f"{kind}/{name}: {c['type']}={c['status']} {reason}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gitops.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    objects = sub.add_parser("objects", help="GitRepository + HelmRelease for the kind cluster")
    objects.add_argument("--url", required=True)
    objects.add_argument("--secret", required=True)
    objects.add_argument("--interval", default="1m")
    objects.add_argument("--branch", default="main")
    objects.add_argument("--values", nargs="*", default=[])
    sub.add_parser("secret-command", help="print the guide's credentials block")
    for name in ("wait", "status"):
        p = sub.add_parser(name)
        p.add_argument("--kubectl", required=True)
        p.add_argument("--kubeconfig", required=True)
        if name == "wait":
            p.add_argument("--revision", required=True)
            p.add_argument("--timeout", type=float, default=1800)
            p.add_argument("--namespace", default="lakehouse", help="namespace the watchdog checks")
    args = parser.parse_args(argv)
    try:
        if args.command == "objects":
            docs = kind_objects(args.url, args.secret, args.interval, args.values, args.branch)
            print(yaml.safe_dump_all(docs, sort_keys=False), end="")
        elif args.command == "secret-command":
            print(secret_command(GUIDE.read_text()), end="")
        elif args.command == "status":
            status(Kubectl(args.kubectl, args.kubeconfig))
        else:
            kube = Kubectl(args.kubectl, args.kubeconfig)
            watch = [
                "--kubectl",
                args.kubectl,
                "--kubeconfig",
                args.kubeconfig,
                "--namespace",
                args.namespace,
            ]
            return wait(kube, args.revision, args.timeout, watch)
    except GitOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
