"""The image builder's pure parts: build order, the command it runs, its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from image_tools import ROOT

from images.build import build_command, build_order, failure_hint, local_base_tag
from lakehouse.versions import versions


def test_images_built_from_the_spark_image_bring_it_along_and_come_after_it():
    assert build_order(["jupyter"]) == ["spark", "jupyter"]
    assert build_order(["spark-operator", "python"]) == ["spark", "python", "spark-operator"]
    assert build_order(["postgres"]) == ["postgres"]


def test_the_command_names_the_base_and_passes_the_bundle_only_as_a_secret(tmp_path: Path):
    bundle = tmp_path / "ca.pem"
    command = build_command("python", ["docker", "build"], "lakehouse/base:x", bundle)
    assert command[:2] == ["docker", "build"]
    assert command[command.index("--file") + 1] == "images/python/Dockerfile"
    assert "BASE_IMAGE=lakehouse/base:x" in command
    assert command[command.index("--secret") + 1] == f"id=ca_bundle,src={bundle}"
    assert not any(str(bundle) in word for word in command if "BASE_IMAGE" in word)
    assert command[-1] == "."
    plain = build_command("python", ["docker", "build"], "lakehouse/base:x", None)
    assert "--secret" not in plain


def test_the_debootstrap_base_is_named_by_suite_and_snapshot():
    v = versions()
    assert local_base_tag(v) == f"lakehouse/base:{v['DEBIAN_RELEASE']}-{v['DEBIAN_SNAPSHOT']}"


def build_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "images", "build", *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_an_unknown_image_is_refused_naming_the_images():
    result = build_cli("sparkk")
    assert result.returncode == 2
    assert "unknown image(s) sparkk" in result.stderr
    assert "spark-operator" in result.stderr


def test_a_missing_ca_bundle_fails_before_any_build(tmp_path: Path):
    result = build_cli("--ca-bundle", str(tmp_path / "absent.pem"), "python")
    assert result.returncode == 1
    assert "no such file" in result.stderr


def test_a_certificate_failure_in_a_step_names_the_ca_bundle_option():
    # pip's own words when a proxy re-signs HTTPS (seen on this machine without CA_BUNDLE).
    log = (
        "#8 6.371 WARNING: Retrying ... [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    assert "CA_BUNDLE=" in failure_hint(log)
    assert failure_hint("#8 ERROR: No matching distribution found for uv==0.13.8") == ""
