"""The GitOps images as deploy/flux runs them: the git server (uid 10001, read-only root,
emptyDirs for /tmp and /srv/git) answers only with its account and keeps what is pushed; the
Flux image (uid 65534) runs both controllers it was built with."""

from __future__ import annotations

import base64
import secrets

from docker_tools import Hardening, Network, wait_until

GIT_SERVER = Hardening("10001:10001", ("/tmp", "/srv/git"))
FLUX = Hardening("65534:65534")
GIT_CLIENT = Hardening("10001:10001", ("/tmp",))


def git_client(network: Network, script: str, auth: str | None) -> tuple[int, str]:
    """A shell script run in a second git-server container, as a git client of the first."""
    env = {"HOME": "/tmp", "GIT_TERMINAL_PROMPT": "0"}
    if auth:
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {auth}",
        }
    result = network.run(
        "git-server", ["-c", script], hardening=GIT_CLIENT, env=env, entrypoint="/bin/sh",
        timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_git_server_needs_its_account_and_keeps_what_is_pushed(network: Network):
    password = secrets.token_urlsafe(18)
    server = network.start(
        "git-server", alias="git", hardening=GIT_SERVER,
        env={"GIT_USER": "flux", "GIT_PASSWORD": password, "GIT_REPOSITORIES": "lakehouse"},
    )  # fmt: skip
    url = "http://git:8080/git/lakehouse.git"
    wait_until(
        lambda: "serving /srv/git" in server.logs(), "the git server to start", 30, server.logs
    )
    assert password not in server.logs()

    code, out = git_client(network, f"git ls-remote {url}", auth=None)
    assert code != 0
    assert "401" in out or "Authentication failed" in out or "could not read Username" in out, out
    wrong = base64.b64encode(b"flux:not-the-password").decode()
    code, out = git_client(network, f"git ls-remote {url}", auth=wrong)
    assert code != 0, out

    good = base64.b64encode(f"flux:{password}".encode()).decode()
    push = (
        "set -e; cd /tmp && git init -q -b main work && cd work"
        " && echo 'shufflePartitions: 2' > values.yaml && git add values.yaml"
        " && git -c user.name=t -c user.email=t@invalid commit -qm first"
        f" && git push -q {url} HEAD:refs/heads/main && git rev-parse HEAD"
    )
    code, out = git_client(network, push, auth=good)
    assert code == 0, out
    pushed = out.strip().splitlines()[-1]
    clone = (
        f"set -e; cd /tmp && git clone -q {url} back"
        " && cat back/values.yaml && git -C back rev-parse HEAD"
    )
    code, out = git_client(network, clone, auth=good)
    assert code == 0, out
    assert out.strip().splitlines() == ["shufflePartitions: 2", pushed]


def test_git_server_refuses_to_start_without_a_password(network: Network):
    result = network.run("git-server", hardening=GIT_SERVER, env={"GIT_USER": "flux"}, timeout=60)
    assert result.returncode != 0
    assert "GIT_PASSWORD is required" in result.stderr


def test_flux_image_runs_both_controllers(network: Network):
    for controller, flag in (
        ("source-controller", "--storage-path"),
        ("helm-controller", "--default-service-account"),
    ):
        result = network.run(
            "flux",
            ["--help"],
            hardening=FLUX,
            entrypoint=f"/usr/local/bin/{controller}",
            timeout=60,
        )
        assert flag in result.stdout + result.stderr, (controller, result.stderr[-500:])
