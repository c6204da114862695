"""values-kind.yaml runs the project's spark-operator image, at the tag the builder gives it."""

from __future__ import annotations

from pathlib import Path

import yaml

from images.build_args import image_tag

ROOT = Path(__file__).resolve().parents[2]


def test_kind_values_name_the_locally_built_operator_image():
    values = yaml.safe_load((ROOT / "charts/lakehouse/values-kind.yaml").read_text())
    image = values["spark-operator"]["image"]
    assert f"{image['repository']}:{image['tag']}" == image_tag("spark-operator")
    assert image["registry"] == "docker.io"
    assert image["pullPolicy"] == "Never"
