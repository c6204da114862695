"""The node image built from package registries (scripts/node-image.sh, `make node-image`),
checked without building it: its tag follows every version that goes in, the kubeadm it is
built from asks for the images versions.env names, and the manifests it bakes in are what kind
and non-root pods need. The build itself (25 min cold) is proven by hand: see the script."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml
from cluster_tools import ROOT, ModuleUnavailableError, go_module_dir

from lakehouse.versions import versions

SCRIPT = ROOT / "scripts" / "node-image.sh"
ASSETS = ROOT / "scripts" / "node-image"


def tag(**overrides: str) -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "tag"],
        env={**os.environ, **overrides},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def test_tag_names_the_kubernetes_version_and_a_key() -> None:
    assert re.fullmatch(
        rf"lakehouse/kind-node:v{re.escape(versions()['KUBERNETES_VERSION'])}-[0-9a-f]{{16}}", tag()
    )


@pytest.mark.parametrize(
    "key",
    [
        "KUBERNETES_VERSION",
        "NODE_ETCD_VERSION",
        "NODE_COREDNS_VERSION",
        "NODE_PAUSE_VERSION",
        "NODE_CRICTL_VERSION",
        "LOCAL_PATH_PROVISIONER_VERSION",
        "KIND_VERSION",
        "DEBIAN_SNAPSHOT",
    ],
)
def test_every_version_that_goes_in_changes_the_key(key: str) -> None:
    assert tag(**{key: versions()[key] + "9"}) != tag()


@pytest.fixture(scope="module")
def kubeadm_constants() -> str:
    try:
        module = go_module_dir("k8s.io/kubernetes", versions()["KUBERNETES_VERSION"])
    except ModuleUnavailableError as exc:
        pytest.skip(f"the kubernetes module cannot be downloaded here: {exc}")
    return (module / "cmd/kubeadm/app/constants/constants.go").read_text()


def constant(source: str, name: str) -> str:
    (value,) = re.findall(rf'^\s*{name}\s*=\s*"([^"]+)"', source, re.MULTILINE)
    return value


def test_the_images_are_the_ones_kubeadm_asks_for(kubeadm_constants: str) -> None:
    v = versions()
    assert constant(kubeadm_constants, "DefaultEtcdVersion") == f"{v['NODE_ETCD_VERSION']}-0"
    assert constant(kubeadm_constants, "CoreDNSVersion") == f"v{v['NODE_COREDNS_VERSION']}"
    assert constant(kubeadm_constants, "PauseVersion") == v["NODE_PAUSE_VERSION"]


def test_crictl_is_the_release_of_our_kubernetes_minor() -> None:
    v = versions()
    assert v["NODE_CRICTL_VERSION"].split(".")[:2] == v["KUBERNETES_VERSION"].split(".")[:2]


def test_local_path_provisioner_is_the_one_kind_builds() -> None:
    try:
        kind = go_module_dir("sigs.k8s.io/kind", versions()["KIND_VERSION"])
    except ModuleUnavailableError as exc:
        pytest.skip(f"the kind module cannot be downloaded here: {exc}")
    makefile = (kind / "images/local-path-provisioner/Makefile").read_text()
    assert f"VERSION=v{versions()['LOCAL_PATH_PROVISIONER_VERSION']}\n" in makefile


def manifest(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ASSETS / name).read_text()) if doc]


def test_default_storage_class_is_local_path_and_volumes_are_world_writable() -> None:
    docs = manifest("default-storage.yaml")
    (storage_class,) = [d for d in docs if d["kind"] == "StorageClass"]
    assert storage_class["metadata"]["name"] == "standard"
    annotations = storage_class["metadata"]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert storage_class["provisioner"] == "rancher.io/local-path"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert 'mkdir -m 0777 -p "$VOL_DIR"' in config["data"]["setup"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # The script fills in the images it built; nothing is pulled.
    assert container["image"] == "__PROVISIONER_IMAGE__"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "__HELPER_IMAGE__" in container["command"]


def test_cni_manifest_is_one_harmless_object_and_the_conflist_is_kinds_pod_subnet() -> None:
    (doc,) = manifest("default-cni.yaml")
    assert (doc["kind"], doc["metadata"]["namespace"]) == ("ConfigMap", "kube-system")
    conflist = yaml.safe_load((ASSETS / "10-lakehouse-ptp.conflist").read_text())
    assert [p["type"] for p in conflist["plugins"]] == ["ptp", "portmap"]
    # kind's default podSubnet is 10.244.0.0/16 and its first node gets 10.244.0.0/24.
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24"}]]
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert "podSubnet" not in config.get("networking", {})


def test_scripts_parse() -> None:
    for script in (SCRIPT, ASSETS / "iptables-wrapper"):
        shell = "sh" if script.name == "iptables-wrapper" else "bash"
        subprocess.run([shell, "-n", str(script)], check=True)
