"""Reading Dockerfiles for the image tests: instructions (continuations joined), stages, ARGs."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = ROOT / "images"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
HADOLINT_CONFIG = IMAGES_DIR / ".hadolint.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions in order; comments dropped, backslash continuations joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(text: str) -> list[list[Instruction]]:
    """Instructions split by FROM; the first list holds the global ARGs before any FROM."""
    split: list[list[Instruction]] = [[]]
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            split.append([])
        split[-1].append(instruction)
    return split


def substitute(value: str, args: dict[str, str | None]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: str(args[m[1] or m[2]]), value)


def lock_versions(lock: Path = ROOT / "uv.lock") -> dict[str, set[str]]:
    """Package name -> the versions uv.lock resolved (one per environment marker)."""
    packages: dict[str, set[str]] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        packages.setdefault(package["name"], set()).add(package["version"])
    return packages


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
