"""The spark image's jars: pinned for every package Spark resolves, and the Dockerfile's
download step really keeps a jar only when its SHA-256 matches the pin."""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_tools import IMAGES_DIR, instructions, stages

from images.jars import LOCK_FILE, Jar, parse_lock, render_lock
from lakehouse.versions import PROVIDED_BY_SPARK, maven_packages, versions

JARS = parse_lock(LOCK_FILE.read_text())


def test_every_jar_has_a_sha256_pin():
    assert JARS
    for jar in JARS:
        assert re.fullmatch(r"[0-9a-f]{64}", jar.sha256), jar.coordinate


@pytest.mark.parametrize(("s3", "postgres"), [(True, True), (False, False), (True, False)])
def test_every_package_spark_resolves_is_pinned(s3: bool, postgres: bool):
    pinned = {jar.coordinate for jar in JARS}
    missing = set(maven_packages(s3=s3, postgres=postgres)) - pinned
    assert not missing


def test_transitive_jars_follow_the_version_matrix():
    v = versions()
    pinned = {(jar.group, jar.artifact): jar.version for jar in JARS}
    assert pinned[("io.delta", "delta-storage")] == v["DELTA_VERSION"]
    assert pinned[("software.amazon.awssdk", "bundle")] == v["AWS_SDK_BUNDLE_VERSION"]
    assert pinned[("org.apache.hadoop", "hadoop-aws")] == v["HADOOP_VERSION"]


def test_no_jar_spark_already_ships_and_no_duplicates():
    modules = [f"{jar.group}:{jar.artifact}" for jar in JARS]
    assert len(modules) == len(set(modules))
    assert not set(modules) & set(PROVIDED_BY_SPARK)
    assert not any(m.startswith("org.apache.spark:") for m in modules)


def test_lock_parsing_rejects_a_malformed_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_lock("# header\nio.delta:delta-spark_4.0_2.13 abc\n")


def test_central_path_and_file_name():
    jar = Jar("org.apache.hadoop", "hadoop-aws", "3.4.1", "0" * 64)
    assert jar.central_path == "org/apache/hadoop/hadoop-aws/3.4.1/hadoop-aws-3.4.1.jar"
    # Ivy's name, the one the embedded runner's jars have
    assert jar.file_name == "org.apache.hadoop_hadoop-aws-3.4.1.jar"


def download_step() -> str:
    """The RUN of the spark Dockerfile's jars stage, as written."""
    text = (IMAGES_DIR / "spark" / "Dockerfile").read_text()
    (jars_stage,) = [s for s in stages(text)[1:] if s[0].arguments.endswith(" AS jars")]
    (run,) = [i.arguments for i in jars_stage if i.keyword == "RUN" and "jars.lock" in i.arguments]
    # The step's shell script, without BuildKit's --mount flags.
    return re.sub(r"^(--mount=\S+\s+)+", "", run)


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Maven-layout repository served on loopback."""
    root = tmp_path / "repo"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()
    server.server_close()


def publish(root: Path, jar: Jar, content: bytes) -> None:
    path = root / jar.central_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def run_download(url: str, tmp_path: Path, lock_text: str) -> subprocess.CompletedProcess[str]:
    """Run the Dockerfile's step with its /tmp moved under tmp_path (same shell as the SHELL)."""
    work = tmp_path / "build"
    work.mkdir()
    (work / "jars.lock").write_text(lock_text)
    shutil.copytree(IMAGES_DIR / "lib", work / "lib")
    script = download_step().replace("/tmp/", f"{work}/")
    return subprocess.run(
        ["/bin/bash", "-o", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", "MAVEN_REPOSITORY": url},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


needs_tools = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("sha256sum")),
    reason="the download step needs curl and sha256sum (the jars stage installs both)",
)


@needs_tools
def test_download_step_keeps_jars_whose_sha256_matches(repository, tmp_path: Path):
    url, root = repository
    contents = {b"delta bytes": ("io.delta", "delta-storage", "4.4.0"),
                b"bundle bytes": ("software.amazon.awssdk", "bundle", "2.24.6")}  # fmt: skip
    jars = []
    for content, (group, artifact, version) in contents.items():
        jar = Jar(group, artifact, version, hashlib.sha256(content).hexdigest())
        publish(root, jar, content)
        jars.append(jar)
    result = run_download(url, tmp_path, "# pins\n" + render_lock("", jars))
    assert result.returncode == 0, result.stderr
    kept = tmp_path / "build" / "jars"
    assert sorted(p.name for p in kept.iterdir()) == [
        "io.delta_delta-storage-4.4.0.jar",
        "software.amazon.awssdk_bundle-2.24.6.jar",
    ]
    assert (kept / "io.delta_delta-storage-4.4.0.jar").read_bytes() == b"delta bytes"
    assert oct((kept / "io.delta_delta-storage-4.4.0.jar").stat().st_mode & 0o777) == "0o644"


@needs_tools
def test_download_step_fails_on_a_tampered_jar(repository, tmp_path: Path):
    url, root = repository
    jar = Jar("io.delta", "delta-storage", "4.4.0", hashlib.sha256(b"expected").hexdigest())
    publish(root, jar, b"tampered")
    result = run_download(url, tmp_path, render_lock("", [jar]))
    assert result.returncode != 0
    assert "FAILED" in result.stderr + result.stdout


@needs_tools
def test_download_step_fails_on_a_missing_jar(repository, tmp_path: Path):
    url, _ = repository
    jar = Jar("io.delta", "delta-storage", "4.4.0", "0" * 64)
    result = run_download(url, tmp_path, render_lock("", [jar]))
    assert result.returncode != 0


def test_download_step_reads_the_lock_the_stage_copies():
    text = (IMAGES_DIR / "spark" / "Dockerfile").read_text()
    copies = [i.arguments for i in instructions(text) if i.keyword == "COPY"]
    assert "images/spark/jars.lock /tmp/jars.lock" in copies
    assert "< /tmp/jars.lock" in download_step()
    assert "COPY --from=jars /tmp/jars/ ${SPARK_HOME}/jars/" in text
