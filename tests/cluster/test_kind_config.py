"""kind-config.yaml and the pinned node image, checked against the source of the pinned kind
release (its Go module): the image is that release's default for our Kubernetes, pinned by
digest, and every key of the config is a field kind's v1alpha4 API knows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_tools import ROOT, ModuleUnavailableError, go_module_dir

from lakehouse.versions import versions

STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
FIELD_TAG = re.compile(r'json:"(\w+)')


@pytest.fixture(scope="module")
def kind_module() -> Path:
    try:
        return go_module_dir("sigs.k8s.io/kind", versions()["KIND_VERSION"])
    except ModuleUnavailableError as exc:
        pytest.skip(f"the kind module cannot be downloaded here: {exc}")


@pytest.fixture(scope="module")
def kind_fields(kind_module: Path) -> dict[str, set[str]]:
    """{struct name: its JSON field names} of kind's v1alpha4 config API."""
    source = (kind_module / "pkg/apis/config/v1alpha4/types.go").read_text()
    return {name: set(FIELD_TAG.findall(body)) for name, body in STRUCT.findall(source)}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "kind-config.yaml").read_text())


def test_node_image_is_the_pinned_kind_releases_default(kind_module: Path) -> None:
    source = (kind_module / "pkg/apis/config/defaults/image.go").read_text()
    (default,) = re.findall(r'const Image = "([^"]+)"', source)
    assert versions()["KIND_NODE_IMAGE"] == default


def test_node_image_is_our_kubernetes_pinned_by_digest() -> None:
    image = versions()["KIND_NODE_IMAGE"]
    match = re.fullmatch(r"kindest/node:v([0-9.]+)@sha256:[0-9a-f]{64}", image)
    assert match, image
    assert match.group(1) == versions()["KUBERNETES_VERSION"]


def test_every_key_is_a_kind_v1alpha4_field(
    config: dict[str, Any], kind_fields: dict[str, set[str]]
) -> None:
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert set(config) - {"kind", "apiVersion"} <= kind_fields["Cluster"]
    assert set(config["networking"]) <= kind_fields["Networking"]
    for node in config["nodes"]:
        assert set(node) <= kind_fields["Node"], node


def test_parser_sees_kinds_real_fields(kind_fields: dict[str, set[str]]) -> None:
    # Guards the check above against a parser that finds nothing (and so allows nothing).
    assert {"nodes", "networking", "featureGates"} <= kind_fields["Cluster"]
    assert {"role", "image", "extraPortMappings"} <= kind_fields["Node"]
    assert {"apiServerAddress", "podSubnet"} <= kind_fields["Networking"]


def test_one_laptop_node_reachable_from_loopback_only(config: dict[str, Any]) -> None:
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert [n["role"] for n in config["nodes"]] == ["control-plane"]
    for node in config["nodes"]:
        for mapping in node.get("extraPortMappings", []):
            assert mapping.get("listenAddress") == "127.0.0.1", mapping
        # The image comes from versions.env through --image: one place for the version.
        assert "image" not in node
