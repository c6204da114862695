"""The build-time CA bundle (`CA_BUNDLE=... make images`) reaches the RUN steps that mount it
and never an image layer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from docker_tools import ROOT, docker

from images.build import builder
from images.build_args import image_tag

BUILT_WITH = os.environ.get("CA_BUNDLE", "")


def layer_files(image: str):
    """(path, sha256) of every regular file of every layer of ``image``, streamed."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert save.stdout is not None
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
        for member in outer:
            if not member.name.endswith(".tar") and "blobs/" not in member.name:
                continue
            layer = outer.extractfile(member)
            if layer is None:
                continue
            try:
                with tarfile.open(fileobj=layer, mode="r|") as inner:
                    for item in inner:
                        if item.isfile():
                            data = inner.extractfile(item)
                            digest = hashlib.sha256(data.read() if data else b"").hexdigest()
                            yield item.name, digest
            except tarfile.ReadError:
                continue  # a config or manifest blob, not a layer
    assert save.wait() == 0


def test_the_secret_reaches_a_step_and_stays_out_of_the_image(tmp_path: Path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nproof of a build-time CA\n")
    expected = hashlib.sha256(bundle.read_bytes()).hexdigest()
    context = tmp_path / "context"
    (context / "images").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(ROOT / "images/lib"), str(context / "images/lib")], check=True)
    (context / "Dockerfile").write_text(
        f"FROM {image_tag('postgres')}\n"
        "USER 0\n"
        "RUN --mount=type=bind,source=images/lib,target=/tmp/lib "
        "--mount=type=secret,id=ca_bundle "
        "/tmp/lib/with-ca.sh sh -c 'sha256sum \"$SSL_CERT_FILE\" | cut -c1-64 > /seen'\n"
    )
    prefix, env = builder()
    tag = "lakehouse/ca-probe:test"
    built = subprocess.run(
        [*prefix, "--secret", f"id=ca_bundle,src={bundle}", "--tag", tag, str(context)],
        capture_output=True, text=True, env={**os.environ, **env}, check=False, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        files = dict(layer_files(tag))
        seen = docker("run", "--rm", "--entrypoint", "cat", tag, "/seen").stdout.strip()
        assert "seen" in files, "the layer scan missed the step's own output"
        assert seen == expected, "the RUN step did not see the bundle"
        assert expected not in files.values(), "the bundle is in a layer"
        assert not any("ca_bundle" in path or "lakehouse-build-ca" in path for path in files)
    finally:
        docker("image", "rm", "--force", tag, check=False)


@pytest.mark.skipif(not BUILT_WITH, reason="the images were not built with CA_BUNDLE set")
@pytest.mark.parametrize("image", ["python", "mlflow"])
def test_no_layer_of_a_built_image_holds_the_bundle(image: str):
    expected = hashlib.sha256(Path(BUILT_WITH).read_bytes()).hexdigest()
    files = dict(layer_files(image_tag(image)))
    assert files, "no layer read"
    holding = [path for path, digest in files.items() if digest == expected]
    assert not holding, f"{image_tag(image)} holds the build CA bundle at {holding}"
