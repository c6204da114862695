"""Build arguments, tags and build commands of the lakehouse images.

Contract with the cluster Makefile (images/README.md): a Dockerfile ARG named like a key of
versions.env gets that key's value; the derived ARG ``PROJECT_VERSION`` is the project version
(pyproject.toml). Images are tagged ``lakehouse/<name>:<project version>``, the tag the DAGs use
by default (dags/lakehouse_dags/deployment.py); jupyter starts from the spark image's tag. The
build context is the repository root; each Dockerfile has a ``Dockerfile.dockerignore`` beside it.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from lakehouse.versions import versions

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "images"
# Build order: jupyter and spark-operator start from the spark image.
IMAGES: tuple[str, ...] = (
    "spark",
    "python",
    "mlflow",
    "airflow",
    "postgres",
    "seaweedfs",
    "spark-operator",
    "jupyter",
    # The GitOps deploy's own (make gitops-up): Flux's two controllers and a git server.
    "flux",
    "git-server",
)
ARG_LINE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE)


def dockerfile(image: str) -> Path:
    if image not in IMAGES:
        raise ValueError(f"unknown image {image!r}; images: {', '.join(IMAGES)}")
    return IMAGES_DIR / image / "Dockerfile"


def dockerfile_args(text: str) -> dict[str, str | None]:
    """Every ARG a Dockerfile declares, with its first default (None when it has none)."""
    args: dict[str, str | None] = {}
    for line in text.splitlines():
        match = ARG_LINE.match(line)
        if match and args.get(match[1]) is None:
            args[match[1]] = match[2]
    return args


def project_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    return tomllib.loads(pyproject.read_text())["project"]["version"]


def image_tag(image: str, version: str | None = None) -> str:
    dockerfile(image)  # validates the name
    return f"lakehouse/{image}:{version or project_version()}"


def derived_args(version: str) -> dict[str, str]:
    """Build arguments that are not in versions.env."""
    return {"PROJECT_VERSION": version}


def resolve_args(
    declared: Mapping[str, str | None], matrix: Mapping[str, str], derived: Mapping[str, str]
) -> dict[str, str]:
    """Values for the declared ARGs that versions.env or the derived set knows; other ARGs
    (e.g. MAVEN_REPOSITORY) keep their Dockerfile defaults."""
    values = {**matrix, **derived}
    return {name: values[name] for name in declared if name in values}


def build_args(image: str) -> dict[str, str]:
    declared = dockerfile_args(dockerfile(image).read_text())
    return resolve_args(declared, versions(), derived_args(project_version()))


def build_arg_flags(args: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    for name, value in args.items():
        flags += ["--build-arg", f"{name}={value}"]
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="image names, in build order")
    commands.add_parser("project-version", help="the project version (pyproject.toml): the tag")
    for name, text in (
        ("tag", "the image's tag"),
        ("build-args", "the --build-arg flags, on one line (shell-quoted)"),
    ):
        commands.add_parser(name, help=text).add_argument("image", choices=IMAGES)
    commands.add_parser("verify-jars", help="check images/spark/jars.lock against Maven Central")
    commands.add_parser("build", help="build images (python -m images build --help)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "build":
        from images.build import main as build

        return build(rest)
    if args.command == "verify-jars":
        from images.jars import main as verify_jars

        return verify_jars(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "list":
        print("\n".join(IMAGES))
    elif args.command == "project-version":
        print(project_version())
    elif args.command == "tag":
        print(image_tag(args.image))
    else:
        print(shlex.join(build_arg_flags(build_args(args.image))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
