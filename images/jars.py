"""The jars baked into the spark image, pinned by SHA-256 in images/spark/jars.lock.

One line per jar: ``group:artifact:version sha256``. The Dockerfile downloads each from Maven
Central and checks it with ``sha256sum``. ``python -m images verify-jars`` (network) re-checks
every pin against the SHA-1 Maven Central publishes next to each jar, and its SHA-256 where
Central has one; ``--write`` pins the SHA-256 of jars whose SHA-1 matched.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = Path(__file__).resolve().parent / "spark" / "jars.lock"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
DEFAULT_JAR_DIR = Path.home() / ".cache" / "lakehouse" / "ivy" / "jars"
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def file_name(self) -> str:
        """Ivy's naming (group_artifact-version.jar): never collides with Spark's own jars."""
        return f"{self.group}_{self.artifact}-{self.version}.jar"

    @property
    def central_path(self) -> str:
        return (
            f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
            f"{self.artifact}-{self.version}.jar"
        )


def parse_lock(text: str) -> list[Jar]:
    """Parse jars.lock: ``group:artifact:version`` and its SHA-256 (``-`` until pinned)."""
    jars = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        parts = fields[0].split(":")
        if len(fields) != 2 or len(parts) != 3 or not all(parts):
            raise ValueError(f"jars.lock line {number}: expected 'group:artifact:version sha256'")
        jars.append(Jar(*parts, sha256=fields[1]))
    return jars


def render_lock(header: str, jars: Sequence[Jar]) -> str:
    width = max(len(j.coordinate) for j in jars)
    return header + "".join(f"{j.coordinate:<{width}}  {j.sha256}\n" for j in jars)


def lock_header(text: str) -> str:
    """The comment lines at the top of jars.lock, kept when it is rewritten."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def _digests(path: Path) -> tuple[str, str]:
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()  # SHA-1: what Central publishes for all
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha1.update(chunk)
            sha256.update(chunk)
    return sha1.hexdigest(), sha256.hexdigest()


def _published(url: str) -> str | None:
    """The first word of a checksum file on Central, or None where it publishes none."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read().decode().split()[0].lower()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def verify(jar: Jar, jar_dir: Path, repository: str) -> tuple[str, list[str]]:
    """Check one jar against Central; returns its SHA-256 and the problems found."""
    url = f"{repository}/{jar.central_path}"
    local = jar_dir / jar.file_name
    with tempfile.TemporaryDirectory() as tmp:
        if not local.exists():
            local = Path(tmp) / jar.file_name
            urllib.request.urlretrieve(url, local)
        sha1, sha256 = _digests(local)
    problems = []
    if _published(url + ".sha1") != sha1:
        problems.append(f"{jar.coordinate}: SHA-1 differs from {url}.sha1")
    central_sha256 = _published(url + ".sha256")
    if central_sha256 is not None and central_sha256 != sha256:
        problems.append(f"{jar.coordinate}: SHA-256 differs from {url}.sha256")
    return sha256, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images verify-jars", description=__doc__)
    parser.add_argument(
        "--jar-dir",
        type=Path,
        default=DEFAULT_JAR_DIR,
        help="use jars found here (Ivy's names) instead of downloading them",
    )
    parser.add_argument("--repository", default=MAVEN_CENTRAL)
    parser.add_argument("--write", action="store_true", help="pin the verified SHA-256s")
    args = parser.parse_args(argv)
    text = LOCK_FILE.read_text()
    checked, failures = [], []
    for jar in parse_lock(text):
        sha256, problems = verify(jar, args.jar_dir, args.repository)
        if not args.write and sha256 != jar.sha256:
            problems.append(f"{jar.coordinate}: pinned SHA-256 {jar.sha256} != {sha256}")
        failures += problems
        checked.append(Jar(jar.group, jar.artifact, jar.version, sha256))
        print(f"{'FAIL' if problems else 'ok  '} {jar.coordinate} sha256={sha256}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    if args.write:
        LOCK_FILE.write_text(render_lock(lock_header(text), checked))
    return 0
