"""Build the lakehouse images: one base, BuildKit, an optional build-time CA bundle.

``python -m images build [IMAGE ...] [--ca-bundle PEM]`` (images/README.md):

- **Base.** ``BASE_IMAGE`` of versions.env (Debian's slim image pinned by digest) when it is
  present or a registry serves it; otherwise the debootstrap base
  ``lakehouse/base:<DEBIAN_RELEASE>-<DEBIAN_SNAPSHOT>`` (made by images/base/build.sh if
  missing), and the output says so.
- **Builder.** BuildKit: ``docker buildx build --load`` where the buildx plugin is installed,
  else a Docker client with BuildKit built in (Debian's 20.10 client, ``DOCKER_BUILDKIT=1``).
- **CA bundle.** Passed as the BuildKit secret ``ca_bundle``: it reaches the RUN steps that
  mount it (images/lib/with-ca.sh) and is never written to a layer.
- **Go binaries** (seaweedfs, spark-operator, flux) are built first on this host from the pinned Go
  modules (images/gobuild.sh) into images/.build/, the only context path those images copy.

Each image prints one line when it starts and one when it is done, with its time and size;
the whole build log is kept under .cluster/images/<name>.log and its tail printed on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from images.build_args import IMAGES, ROOT, build_arg_flags, build_args, dockerfile, image_tag
from lakehouse.versions import versions

LOG_DIR = ROOT / ".cluster" / "images"
GO_BINARIES: dict[str, tuple[str, ...]] = {
    "seaweedfs": ("seaweedfs",),
    "spark-operator": ("spark-operator",),
    "flux": ("flux",),
}
# Images built FROM another project image: that one is built first.
NEEDS: dict[str, str] = {"jupyter": "spark", "spark-operator": "spark"}


class BuildError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"==> images: {message}", flush=True)


def run(args: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, **kwargs)


def image_present(reference: str) -> bool:
    return run(["docker", "image", "inspect", reference]).returncode == 0


def local_base_tag(v: dict[str, str]) -> str:
    return f"lakehouse/base:{v['DEBIAN_RELEASE']}-{v['DEBIAN_SNAPSHOT']}"


def resolve_base() -> str:
    """The base every image is built FROM on this machine (see the module docstring)."""
    v = versions()
    registry_base = v["BASE_IMAGE"]
    if image_present(registry_base):
        return registry_base
    try:
        pulled = run(["docker", "pull", "--quiet", registry_base], timeout=600)
    except subprocess.TimeoutExpired:
        pulled = subprocess.CompletedProcess([], 1, "", "no answer within 600 s")
    if pulled.returncode == 0:
        say(f"base {registry_base} (pulled)")
        return registry_base
    local = local_base_tag(v)
    reason = (pulled.stderr.strip().splitlines() or ["no answer"])[-1]
    say(f"no registry serves {registry_base} ({reason[:120]})")
    say(f"building on {local}, the debootstrap base of images/base/build.sh (make base-image)")
    if not image_present(local):
        built = subprocess.run(["bash", str(ROOT / "images/base/build.sh"), local], check=False)
        if built.returncode != 0:
            raise BuildError("the debootstrap base could not be built (see above)")
    return local


def client_version(client: str) -> tuple[int, ...]:
    out = run([client, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    return tuple(int(n) for n in re.findall(r"\d+", out)[:2]) or (0,)


def builder() -> tuple[list[str], dict[str, str]]:
    """The BuildKit build command prefix and the environment it needs."""
    if run(["docker", "buildx", "version"]).returncode == 0:
        return ["docker", "buildx", "build", "--load"], {}
    # Docker clients before 23 carry BuildKit themselves (DOCKER_BUILDKIT=1); later ones need
    # the buildx plugin. Debian's docker.io (20.10) installs /usr/bin/docker.
    for client in dict.fromkeys([shutil.which("docker") or "docker", "/usr/bin/docker"]):
        if Path(client).exists() and (0,) < client_version(client) < (23,):
            return [client, "build"], {"DOCKER_BUILDKIT": "1"}
    raise BuildError(
        "no BuildKit builder: install the docker buildx plugin (Docker Desktop and Docker "
        "Engine packages carry it), then run `make images` again"
    )


def build_order(requested: Sequence[str]) -> list[str]:
    wanted = set(requested)
    for image in requested:
        if image in NEEDS:
            wanted.add(NEEDS[image])
    return [image for image in IMAGES if image in wanted]


def build_command(
    image: str, prefix: Sequence[str], base: str, ca_bundle: Path | None
) -> list[str]:
    args = {**build_args(image), "BASE_IMAGE": base}
    command = [
        *prefix,
        "--progress=plain",
        "--file",
        str(dockerfile(image).relative_to(ROOT)),
        "--tag",
        image_tag(image),
        *build_arg_flags(args),
    ]
    if ca_bundle is not None:
        command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    return [*command, "."]


STEP = re.compile(r"^#\d+ \[(?P<step>[^\]]+)\] (?P<what>.*)$")


def build_one(image: str, command: Sequence[str], env: dict[str, str]) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{image}.log"
    started = time.monotonic()
    say(f"building {image_tag(image)} (log: {log_path.relative_to(ROOT)})")
    seen: set[str] = set()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            match = STEP.match(line.rstrip())
            if match and match["step"] not in seen and not match["what"].startswith("FROM"):
                seen.add(match["step"])
                print(f"    [{match['step']}] {match['what'][:100]}", flush=True)
        status = process.wait()
    if status != 0:
        text = log_path.read_text()
        tail = text.splitlines()[-25:]
        raise BuildError(
            f"{image} failed (exit {status}); last lines:\n" + "\n".join(tail) + failure_hint(text)
        )
    size = run(["docker", "image", "inspect", "--format", "{{.Size}}", image_tag(image)]).stdout
    say(f"{image_tag(image)} built in {time.monotonic() - started:.0f} s, {int(size) / 1e6:.0f} MB")


def failure_hint(log: str) -> str:
    """What to do about a failure whose cause the log names, beyond its last lines."""
    if "CERTIFICATE_VERIFY_FAILED" in log or "certificate verify failed" in log:
        return (
            "\nHTTPS certificate verification failed inside the build: behind a TLS-inspecting "
            "proxy, pass its CA bundle (CA_BUNDLE=/path/to/bundle.pem make images, or "
            "--ca-bundle); it is given to the steps as a build secret, never stored in an image."
        )
    return ""


def go_binaries(images: Sequence[str]) -> None:
    targets = [t for image in images for t in GO_BINARIES.get(image, ())]
    if targets:
        built = subprocess.run(["bash", str(ROOT / "images/gobuild.sh"), *targets], check=False)
        if built.returncode != 0:
            raise BuildError(f"the Go binaries of {', '.join(targets)} could not be built (above)")


def build(images: Sequence[str], ca_bundle: Path | None) -> None:
    order = build_order(images or IMAGES)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise BuildError(f"CA_BUNDLE={ca_bundle}: no such file")
    started = time.monotonic()
    prefix, env = builder()
    base = resolve_base()
    go_binaries(order)
    for image in order:
        build_one(image, build_command(image, prefix, base, ca_bundle), env)
    say(f"{len(order)} images built in {time.monotonic() - started:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images build")
    parser.add_argument("images", nargs="*", metavar="IMAGE", help=f"default: all of {IMAGES}")
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        default=Path(os.environ["CA_BUNDLE"]) if os.environ.get("CA_BUNDLE") else None,
        help="PEM bundle every download during the build trusts (default: $CA_BUNDLE)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.images) - set(IMAGES))
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}; images: {', '.join(IMAGES)}")
    try:
        build(args.images, args.ca_bundle)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
