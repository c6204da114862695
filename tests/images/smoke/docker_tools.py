"""Running the project's images as the chart runs them: their uid, a read-only root filesystem,
every capability dropped, no privilege escalation, writable only where the chart mounts a volume
(tmpfs here, owned by the pod's uid as an fsGroup'd emptyDir is), on a private network."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from images.build_args import image_tag

ROOT = Path(__file__).resolve().parents[3]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... failed:\n{result.stderr[-3000:]}")
    return result


def docker_answers() -> bool:
    try:
        return docker("info", timeout=20, check=False).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def image_present(image: str) -> bool:
    return docker("image", "inspect", image_tag(image), check=False).returncode == 0


@dataclass(frozen=True)
class Hardening:
    """How the chart runs a container; the defaults are every pod's."""

    user: str
    tmpfs: tuple[str, ...] = ("/tmp",)
    read_only: bool = True

    def flags(self) -> list[str]:
        uid, _, gid = self.user.partition(":")
        owner = f"uid={uid},gid={gid or uid}"
        flags = ["--user", self.user, "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        if self.read_only:
            flags.append("--read-only")
        for path in self.tmpfs:
            # exec: an emptyDir is not mounted noexec (JNI libraries such as zstd-jni are
            # unpacked to /tmp and loaded from there), while Docker's tmpfs default is.
            flags += ["--tmpfs", f"{path}:{owner},mode=0770,exec"]
        return flags


def env_flags(env: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    for key in env:
        # Values travel through docker's own environment (-e KEY), never in the argument list.
        flags += ["--env", key]
    return flags


def run_env(env: Mapping[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **env}


@dataclass
class Network:
    """A private Docker network; every container started on it is removed with it."""

    name: str = field(default_factory=lambda: f"lakehouse-smoke-{uuid.uuid4().hex[:8]}")
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def create(self) -> Network:
        docker("network", "create", "--internal", self.name)
        return self

    def volume(self) -> str:
        name = f"{self.name}-{uuid.uuid4().hex[:6]}"
        docker("volume", "create", name)
        self.volumes.append(name)
        return name

    def _docker_run(
        self,
        image: str,
        args: Sequence[str],
        hardening: Hardening,
        env: Mapping[str, str],
        extra: Sequence[str],
        *,
        detach: bool,
        alias: str | None,
        timeout: float,
        entrypoint: str | None,
    ) -> subprocess.CompletedProcess:
        if not image_present(image):
            raise AssertionError(f"{image_tag(image)} is not built: run `make images`")
        flags = ["--network", self.name, *hardening.flags(), *env_flags(env), *extra]
        if alias:
            flags += ["--network-alias", alias, "--hostname", alias]
        if entrypoint is not None:
            flags += ["--entrypoint", entrypoint]
        mode = ["--detach"] if detach else ["--rm"]
        return subprocess.run(
            ["docker", "run", *mode, *flags, image_tag(image), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=run_env(env),
        )

    def start(
        self,
        image: str,
        args: Sequence[str] = (),
        *,
        alias: str,
        hardening: Hardening,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
        entrypoint: str | None = None,
    ) -> Container:
        result = self._docker_run(
            image, args, hardening, env or {}, extra,
            detach=True, alias=alias, timeout=60, entrypoint=entrypoint,
        )  # fmt: skip
        assert result.returncode == 0, f"{image} did not start: {result.stderr[-2000:]}"
        container = Container(result.stdout.strip(), alias)
        self.containers.append(container.id)
        return container

    def run(
        self,
        image: str,
        args: Sequence[str] = (),
        *,
        hardening: Hardening,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
        timeout: float = 600,
        entrypoint: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a container to its end (removed afterwards); returns its exit code and output."""
        return self._docker_run(
            image, args, hardening, env or {}, extra,
            detach=False, alias=None, timeout=timeout, entrypoint=entrypoint,
        )  # fmt: skip

    def remove(self) -> None:
        for container in reversed(self.containers):
            docker("rm", "--force", "--volumes", container, check=False)
        for volume in self.volumes:
            docker("volume", "rm", "--force", volume, check=False)
        docker("network", "rm", self.name, check=False)


@dataclass(frozen=True)
class Container:
    id: str
    alias: str

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.id).stdout)

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def exec(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return docker("exec", self.id, *args, timeout=timeout, check=False)

    def restart(self) -> None:
        docker("restart", "--time", "30", self.id, timeout=90)

    def inspect(self, template: str) -> str:
        return docker("inspect", "--format", template, self.id).stdout.strip()


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, on_fail: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{on_fail()[-3000:]}")


def json_lines(text: str) -> list[dict]:
    """The JSON lines a stage main prints (one per day), skipping any other output."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines
