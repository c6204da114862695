"""The Makefile as a user meets it: help, the order of `make up`, fast failure without Docker,
and the README's commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cluster_tools import (
    CLUSTER_MK,
    MAKEFILES,
    ROOT,
    help_entries,
    make,
    path_without,
    phony_targets,
)

from lakehouse.versions import versions

UP_STEPS = ["preflight", "create", "images", "load", "deploy", "watch"]
STEP = re.compile(r"^bash scripts/cluster\.sh (\S+)$", re.MULTILINE)
# Targets of mk/cluster.mk that need Docker: all but clean-cluster (it only sequences others,
# failing through its first step) and tools-kubectl (it builds a tool; `make test` runs it).
CLUSTER_TARGETS = sorted(phony_targets(CLUSTER_MK) - {"clean-cluster", "tools-kubectl"})


def test_help_lists_every_target_with_a_description() -> None:
    proc = make("help")
    assert proc.returncode == 0, proc.stderr
    entries = help_entries(proc.stdout)
    targets = phony_targets(*MAKEFILES)
    assert len(targets) > 20
    assert targets == set(entries), (
        f"without help: {sorted(targets - set(entries))}; "
        f"help for no .PHONY target: {sorted(set(entries) - targets)}"
    )
    assert not [t for t, text in entries.items() if len(text) < 10], entries


def test_help_is_the_default_goal() -> None:
    assert make().stdout == make("help").stdout


def test_make_n_up_shows_preflight_cluster_images_load_deploy_watchdog_in_order() -> None:
    proc = make("-n", "up")
    assert proc.returncode == 0, proc.stderr
    assert STEP.findall(proc.stdout) == UP_STEPS, proc.stdout
    assert make("-n", "kind-up").stdout == proc.stdout


def test_make_n_setup_is_up_then_ingest() -> None:
    proc = make("-n", "setup")
    assert proc.returncode == 0, proc.stderr
    assert STEP.findall(proc.stdout) == [*UP_STEPS, "ingest"]


def test_clean_also_removes_the_cluster() -> None:
    proc = make("-n", "clean")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    (own,) = [i for i, line in enumerate(lines) if line.startswith("rm -rf .lakehouse")]
    assert lines.index("bash scripts/cluster.sh clean") < own


@pytest.fixture(scope="module")
def env_without_docker(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {**os.environ, "PATH": path_without("docker", tmp_path_factory.mktemp("shadow-bin"))}
    assert shutil.which("docker", path=env["PATH"]) is None
    assert shutil.which("make", path=env["PATH"])
    assert shutil.which("bash", path=env["PATH"])
    return env


@pytest.mark.parametrize("target", CLUSTER_TARGETS)
def test_cluster_target_without_docker_fails_within_seconds(
    target: str, env_without_docker: dict[str, str]
) -> None:
    started = time.monotonic()
    proc = make(target, env=env_without_docker, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0, proc.stdout
    assert elapsed < 10, f"{target} took {elapsed:.1f}s to fail"
    assert "Docker is required for the laptop cluster" in proc.stderr, proc.stderr
    assert "`docker` is not on PATH" in proc.stderr
    # Nothing was built or started before the check.
    assert "building" not in proc.stdout + proc.stderr


def test_cluster_target_with_docker_daemon_down_fails_within_seconds(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine: the daemon-down message needs one")
    # A socket path where no daemon can be: the real client, failing the way it does when
    # Docker Desktop is not started.
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    started = time.monotonic()
    proc = make("up", env=env, timeout=30)
    assert proc.returncode != 0
    assert time.monotonic() - started < 10
    assert "Docker is installed but its daemon does not answer" in proc.stderr, proc.stderr


def test_clean_cluster_without_docker_removes_local_state(
    env_without_docker: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    (state / "kubeconfig").parent.mkdir(parents=True)
    (state / "kubeconfig").write_text("apiVersion: v1\n")
    proc = make("clean-cluster", env={**env_without_docker, "CLUSTER_STATE": str(state)})
    assert proc.returncode == 0, proc.stderr
    assert 'no kind cluster "lakehouse" to delete' in proc.stdout
    assert not state.exists()


def make_commands(markdown: str) -> list[str]:
    """Targets of every `make ...` in the code of a Markdown text (fenced blocks and inline
    code spans; prose is not parsed): flags skipped, VAR=value and comments end the list."""
    code = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    code += re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))
    words = []
    for snippet in code:
        for match in re.finditer(
            r"(?:^|[\s;&|(])make((?:[ \t]+-\S+)*(?:[ \t]+[a-z][a-z0-9-]*)+)", snippet
        ):
            words += [w for w in match.group(1).split() if not w.startswith("-")]
    return words


def test_make_commands_are_found_in_code_only() -> None:
    text = "Run `make up KIND_VERSION=1` then make sure.\n```bash\nmake -s down up   # go\n```\n"
    assert make_commands(text) == ["down", "up", "up"]


def test_every_make_command_in_the_readmes_exists() -> None:
    targets = phony_targets(*MAKEFILES)
    found = {}
    for readme in (ROOT / "README.md", ROOT / "deploy" / "README.md"):
        for word in make_commands(readme.read_text()):
            found.setdefault(word, readme.name)
    assert {"up", "run", "port-forward", "demo", "test"} <= set(found)
    missing = {w: f for w, f in found.items() if w not in targets}
    assert not missing, f"README commands with no make target: {missing}"


def script_env(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_versions_come_from_versions_env_and_the_tag_is_the_charts_app_version() -> None:
    proc = subprocess.run(
        ["bash", "scripts/cluster.sh", "env"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    env = script_env(proc.stdout)
    for key in ("KIND_VERSION", "KIND_NODE_IMAGE", "KUBERNETES_VERSION", "HELM_VERSION"):
        assert env[key] == versions()[key]
    chart = yaml.safe_load((ROOT / "charts/lakehouse/Chart.yaml").read_text())
    # The images are tagged with the version the chart pulls when a tag is left empty.
    assert env["IMAGE_TAG"] == chart["appVersion"]


def test_a_version_overridden_on_the_make_command_line_reaches_the_script(tmp_path: Path) -> None:
    # A probe target beside the real Makefile, calling the script as mk/cluster.mk does.
    probe = tmp_path / "probe.mk"
    probe.write_text("probe:\n\t@$(CLUSTER_SH) env\n")
    proc = make("-f", "Makefile", "-f", str(probe), "probe", "KIND_VERSION=0.31.0")
    assert proc.returncode == 0, proc.stderr
    env = script_env(proc.stdout)
    assert env["KIND_VERSION"] == "0.31.0"
    assert env["KUBERNETES_VERSION"] == versions()["KUBERNETES_VERSION"]
