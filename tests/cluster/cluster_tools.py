"""Shared by the cluster tests: paths, the make targets, Go modules from the module proxy, strict
CRD schemas, and a PATH without docker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cluster_contract import strict

ROOT = Path(__file__).resolve().parents[2]
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
CLUSTER_MK = ROOT / "mk" / "cluster.mk"
DEPLOY = ROOT / "deploy"
PHONY = re.compile(r"^\.PHONY:\s*(.+)$", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ModuleUnavailableError(RuntimeError):
    """The Go toolchain or the module proxy cannot provide a module here."""


def phony_targets(*files: Path) -> set[str]:
    """Every target declared .PHONY in ``files``: the commands a user types."""
    return {name for f in files for line in PHONY.findall(f.read_text()) for name in line.split()}


def help_entries(text: str) -> dict[str, str]:
    """``make help`` output as {target: description}."""
    entries = {}
    for line in ANSI.sub("", text).splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            entries[parts[0]] = parts[1] if len(parts) > 1 else ""
    return entries


def make(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def go_module_dir(module: str, version: str) -> Path:
    """The module's folder in the Go module cache (`go mod download` is cached and idempotent)."""
    if shutil.which("go") is None:
        raise ModuleUnavailableError("the Go toolchain is not installed")
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@v{version}"],
        cwd="/tmp",  # outside any module, as charts/scripts/chart-tools.sh does
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0 or "Dir" not in info:
        raise ModuleUnavailableError(f"{module}@v{version}: {info.get('Error') or proc.stderr}")
    return Path(info["Dir"])


def crd_validator(crd: dict[str, Any], version: str) -> Any:
    """A strict Draft 7 validator of the served, stored ``version`` of ``crd``."""
    import jsonschema

    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert entry["served"], f"{crd['metadata']['name']} {version} is not served"
    assert entry["storage"], f"{crd['metadata']['name']} {version} is not the storage version"
    return jsonschema.Draft7Validator(strict(entry["schema"]["openAPIV3Schema"]))


def path_without(program: str, shadow_root: Path) -> str:
    """PATH with every ``program`` hidden: directories that hold it are replaced by a shadow
    folder (under ``shadow_root``) of links to everything else in them."""
    parts = []
    for index, entry in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        folder = Path(entry)
        if not (folder / program).exists():
            parts.append(entry)
            continue
        shadow = shadow_root / str(index)
        shutil.rmtree(shadow, ignore_errors=True)
        shadow.mkdir(parents=True)
        for item in folder.iterdir():
            if item.name != program:
                (shadow / item.name).symlink_to(item)
        parts.append(str(shadow))
    return os.pathsep.join(parts)
