"""Flux deploys the lakehouse from git on a real kind cluster, and git changes what runs.

Tests run in file order (pytest keeps it): the deploy of the pushed checkout, one green DAG run,
a commit that changes a setting (rolled out within the poll interval), a commit with a value
the chart's schema refuses (the release is left as it was and Flux says why), the revert of it
(Ready again), last `make down`.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from e2e_tools import (
    KUBECONFIG,
    OUT,
    Airflow,
    Phases,
    kubectl_json,
    make,
    port_forward,
    say,
    secret_data,
    wait_for,
)
from script_modules import load_module

from lakehouse.pipeline import STAGES


def _gitops_script() -> Any:
    return load_module("scripts/gitops.py")


GITOPS = _gitops_script()
# The poll interval gitops.sh gives the GitRepository on kind (GITOPS_INTERVAL, default 1m).
INTERVAL_SECONDS = 60
# Rolling out the chart (helm upgrade, waited for) on a 2-core node.
ROLLOUT_SECONDS = 1500
VALUES_FILE = "charts/lakehouse/values-small.yaml"
SETTING = "LAKEHOUSE_SHUFFLE_PARTITIONS"


def flux(kind: str, name: str = "lakehouse") -> dict[str, Any]:
    return kubectl_json("get", kind, name, namespace="flux-system")


def settings_value() -> str:
    return kubectl_json("get", "configmap", "lakehouse-settings")["data"][SETTING]


def helm_releases() -> dict[int, str]:
    """version -> status of the release's Helm storage Secrets."""
    items = kubectl_json("get", "secrets", "-l", "owner=helm,name=lakehouse")["items"]
    return {
        int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"]["status"] for s in items
    }


def pods() -> list[dict[str, Any]]:
    return kubectl_json("get", "pods")["items"]


def scheduler_uid() -> str:
    items = kubectl_json("get", "pods", "-l", "app.kubernetes.io/component=airflow-scheduler")
    running = [p for p in items["items"] if p["status"].get("phase") == "Running"]
    assert len(running) == 1, [p["metadata"]["name"] for p in items["items"]]
    return running[0]["metadata"]["uid"]


def long_running_uids() -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in pods()
        if p["status"].get("phase") == "Running"
    }


@dataclass
class GitServer:
    """The in-cluster git server through a port-forward, with the account of its Secret
    (passed to git by environment, never in a URL)."""

    url: str
    env: dict[str, str]

    def git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, work: Path, message: str, edit: Callable[[Path], None]) -> str:
        """Pull main, change the checkout, commit and push: the commit's sha."""
        self.git("pull", "--quiet", "--ff-only", self.url, "main", cwd=work)
        edit(work)
        self.git("commit", "--quiet", "--all", "--message", message, cwd=work)
        self.git("push", "--quiet", self.url, "HEAD:refs/heads/main", cwd=work)
        return self.git("rev-parse", "HEAD", cwd=work)


@pytest.fixture(scope="module")
def git_server(deployed: str) -> Iterator[GitServer]:
    account = secret_data("git-server-account", namespace="git-server")
    auth = base64.b64encode(f"{account['GIT_USER']}:{account['GIT_PASSWORD']}".encode()).decode()
    env = {
        **os.environ,
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {auth}",
        "GIT_CONFIG_KEY_1": "user.name",
        "GIT_CONFIG_VALUE_1": "lakehouse e2e",
        "GIT_CONFIG_KEY_2": "user.email",
        "GIT_CONFIG_VALUE_2": "e2e@lakehouse.invalid",
    }
    with port_forward("svc/git-server", 80, namespace="git-server") as port:
        yield GitServer(f"http://127.0.0.1:{port}/git/lakehouse.git", env)


@pytest.fixture(scope="module")
def checkout(git_server: GitServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("gitops") / "lakehouse"
    git_server.git("clone", "--quiet", "--branch", "main", git_server.url, str(work))
    return work


def append_setting(value: int) -> Callable[[Path], None]:
    def edit(work: Path) -> None:
        path = work / VALUES_FILE
        text = path.read_text()
        marker = "\n# e2e-gitops setting\n"
        text = text.split(marker)[0]
        path.write_text(f"{text}{marker}settings:\n  shufflePartitions: {value}\n")

    return edit


def wait_for_attempt(sha: str, timeout: float) -> dict[str, Any]:
    """The HelmRelease once Flux has attempted the chart of commit SHA and settled on it
    (Ready True, or Ready False with a reason other than progressing)."""

    def settled() -> dict[str, Any] | None:
        release = flux("helmrelease")
        attempted = release.get("status", {}).get("lastAttemptedRevision", "")
        ready = GITOPS.condition(release)
        if not GITOPS.built_from(attempted, sha):
            return None
        if ready.get("observedGeneration") != release["metadata"]["generation"]:
            return None
        if ready.get("status") == "True" or ready.get("reason") not in (None, "Progressing"):
            return release
        return None

    return wait_for(f"Flux to settle on commit {sha[:12]}", settled, timeout, every=5)


def wait_for_source(sha: str, timeout: float) -> float:
    """Seconds until the GitRepository's artifact is commit SHA."""
    t0 = time.monotonic()
    wait_for(
        f"the GitRepository to fetch {sha[:12]}",
        lambda: (
            flux("gitrepository").get("status", {}).get("artifact", {}).get("revision", "")
            == f"main@sha1:{sha}"
        ),
        timeout,
        every=2,
    )
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------


def test_flux_deployed_the_pushed_commit(deployed: str, phases: Phases) -> None:
    release = flux("helmrelease")
    state, message = GITOPS.release_state(release, deployed)
    assert state == "ready", message
    assert flux("gitrepository")["status"]["artifact"]["revision"] == f"main@sha1:{deployed}"
    latest = release["status"]["history"][0]
    assert GITOPS.built_from(latest["chartVersion"], deployed), latest["chartVersion"]
    assert latest["status"] == "deployed"
    # From nothing this is version 1; `make gitops-push` on a kept cluster adds versions.
    releases = helm_releases()
    assert releases[latest["version"]] == "deployed" == releases[max(releases)]
    phases.facts["deployed"] = {"commit": deployed, "chart_version": latest["chartVersion"]}
    for pod in pods():
        phase = pod["status"].get("phase")
        assert phase in ("Running", "Succeeded"), (pod["metadata"]["name"], phase)
        if phase == "Running":
            statuses = pod["status"].get("containerStatuses", [])
            assert all(c["ready"] for c in statuses), pod["metadata"]["name"]
    controllers = kubectl_json("get", "pods", namespace="flux-system")["items"]
    assert len(controllers) == 2
    for pod in controllers:
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "lakehouse/flux:0.1.0"
        assert pod["spec"]["securityContext"]["runAsUser"] == 65534
        assert pod["status"]["phase"] == "Running"


def test_the_dag_runs_green_once(
    deployed: str, airflow: Airflow, phases: Phases, day: date
) -> None:
    run_id_file = OUT / "gitops-run-id"
    with phases.phase(f"make run DAY={day}"):
        make(
            "run", OUT / "gitops-logs" / "run.log", timeout=5400,
            DAY=day.isoformat(), RUN_ID_FILE=str(run_id_file), PROFILE="small",
        )  # fmt: skip
    run_id = run_id_file.read_text().strip()
    run = airflow.run(run_id)
    tis = airflow.task_instances(run_id)
    phases.facts["run"] = {
        "run_id": run_id,
        "tasks": {t["task_id"]: {"state": t["state"], "seconds": t.get("duration")} for t in tis},
    }
    assert run["state"] == "success"
    assert {t["task_id"]: t["state"] for t in tis} == {s.name: "success" for s in STAGES}


def test_the_cluster_quarantine_holds_the_injected_bad_lines_with_their_reasons(
    deployed: str, airflow: Airflow, day: date, phases: Phases
) -> None:
    """Read from SeaweedFS with deltalake: the run's ingest day quarantined every class the
    generator injected (invalid keys and 1970 clock resets included), as often as it did."""
    from collections import Counter

    from e2e_tools import cluster_reader_settings, kubectl_json
    from table_readers import delta_rows

    from lakehouse.events import REASON_CODES
    from lakehouse.generator import GeneratorConfig, generate_day
    from lakehouse.tables import locations

    data = kubectl_json("get", "configmap", "lakehouse-settings")["data"]
    with cluster_reader_settings(data, secret_data("lakehouse-credentials")) as settings:
        rows = delta_rows(settings, locations(settings).silver_quarantine)
        # The run's interval starts on DAY: its raw objects carry ingest_date=DAY.
        found = Counter(reason for r in rows if r["ingest_date"] == day for reason in r["reasons"])
        injected = generate_day(GeneratorConfig.from_settings(settings), day).injected
    expected = Counter({k: v for k, v in injected.items() if k in REASON_CODES})
    phases.facts["quarantine"] = dict(found)
    assert expected["invalid_key"] > 0
    assert expected["stale_timestamp"] > 0
    assert found == expected


def test_a_pushed_setting_rolls_out_within_the_poll_interval(
    git_server: GitServer, checkout: Path, phases: Phases
) -> None:
    before, scheduler, releases = settings_value(), scheduler_uid(), helm_releases()
    wanted = 3 if before == "2" else 2
    with phases.phase(f"commit settings.shufflePartitions={wanted}, rolled out by Flux"):
        sha = git_server.commit(
            checkout, f"e2e: shuffle partitions {wanted}", append_setting(wanted)
        )
        t0 = time.monotonic()
        fetched = wait_for_source(sha, INTERVAL_SECONDS * 3)
        release = wait_for_attempt(sha, ROLLOUT_SECONDS)
        rolled = time.monotonic() - t0
    state, message = GITOPS.release_state(release, sha)
    phases.facts["change"] = {
        "commit": sha, "fetched_seconds": round(fetched, 1), "ready_seconds": round(rolled, 1),
    }  # fmt: skip
    say(f"commit {sha[:12]}: fetched after {fetched:.0f} s, release Ready after {rolled:.0f} s")
    assert state == "ready", message
    # Fetched within one poll interval (plus the fetch itself), not by any nudge of ours.
    assert fetched <= INTERVAL_SECONDS + 30
    assert settings_value() == str(wanted)
    last = max(releases)
    assert helm_releases() == {**releases, last: "superseded", last + 1: "deployed"}
    # The settings checksum changed the scheduler's pod template: a new pod runs.
    assert scheduler_uid() != scheduler


def test_an_invalid_value_is_refused_and_the_release_left_as_it_was(
    git_server: GitServer, checkout: Path, phases: Phases
) -> None:
    value, running = settings_value(), long_running_uids()
    releases = helm_releases()
    with phases.phase("commit settings.shufflePartitions=0, refused by the schema"):
        sha = git_server.commit(
            checkout, "e2e: an invalid shuffle partition count", append_setting(0)
        )
        wait_for_source(sha, INTERVAL_SECONDS * 3)
        release = wait_for_attempt(sha, ROLLOUT_SECONDS)
    ready = GITOPS.condition(release)
    phases.facts["refused"] = {
        "commit": sha,
        "reason": ready.get("reason"),
        "message": ready.get("message"),
    }
    say(f"Flux on {sha[:12]}: {ready.get('reason')}: {ready.get('message')}")
    assert ready["status"] == "False"
    assert "schema" in ready["message"]
    assert "shufflePartitions" in ready["message"]
    # Helm refused before writing a release: nothing new in its storage, nothing restarted.
    assert helm_releases() == releases
    assert settings_value() == value
    assert long_running_uids() == running


def test_reverting_the_refused_commit_makes_the_release_ready_again(
    git_server: GitServer, checkout: Path, phases: Phases
) -> None:
    value, running, releases = settings_value(), long_running_uids(), helm_releases()

    def revert(work: Path) -> None:
        git_server.git("revert", "--no-edit", "--no-commit", "HEAD", cwd=work)

    with phases.phase("revert the refused commit"):
        sha = git_server.commit(checkout, "e2e: revert the invalid shuffle partition count", revert)
        wait_for_source(sha, INTERVAL_SECONDS * 3)
        release = wait_for_attempt(sha, ROLLOUT_SECONDS)
    state, message = GITOPS.release_state(release, sha)
    assert state == "ready", message
    assert settings_value() == value
    assert max(helm_releases()) == max(releases) + 1
    # Same templates and values, only a new chart version (the commit): no pod restarted.
    assert long_running_uids() == running


@pytest.mark.skipif(
    os.environ.get("E2E_KEEP") == "1",
    reason="E2E_KEEP=1: the cluster is kept for inspection (`make down` removes it)",
)
def test_make_down_removes_the_cluster(deployed: str, phases: Phases) -> None:
    with phases.phase("make down"):
        make("down", OUT / "gitops-logs" / "down.log", timeout=600)
    assert not KUBECONFIG.exists()
