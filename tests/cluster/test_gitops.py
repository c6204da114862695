"""deploy/: the Argo CD Application and the Flux GitRepository + HelmRelease, validated strictly
against the CRDs of the pinned Argo CD and Flux releases (their Go modules carry them), pointing
at the chart and the GitOps values the manifest tier renders, with the Secret the guide creates."""

from __future__ import annotations

import copy
import re
import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_tools import DEPLOY, ROOT, ModuleUnavailableError, crd_validator, go_module_dir

from lakehouse.versions import versions

# (versions.env prefix, CRD file inside the module)
CRDS = {
    "Application": ("ARGOCD", "manifests/crds/application-crd.yaml"),
    "GitRepository": (
        "FLUX_SOURCE_CONTROLLER",
        "config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml",
    ),
    "HelmRelease": (
        "FLUX_HELM_CONTROLLER",
        "config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml",
    ),
}
MANIFESTS = {
    "Application": DEPLOY / "argocd" / "application.yaml",
    "GitRepository": DEPLOY / "flux" / "gitrepository.yaml",
    "HelmRelease": DEPLOY / "flux" / "helmrelease.yaml",
}


def load(kind: str) -> dict[str, Any]:
    doc = yaml.safe_load(MANIFESTS[kind].read_text())
    assert doc["kind"] == kind
    return doc


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    out = {}
    for kind, (prefix, path) in CRDS.items():
        module, version = versions()[f"{prefix}_MODULE"], versions()[f"{prefix}_VERSION"]
        try:
            folder = go_module_dir(module, version)
        except ModuleUnavailableError as exc:
            pytest.skip(f"the {kind} CRD cannot be downloaded here: {exc}")
        out[kind] = yaml.safe_load((folder / path).read_text())
    return out


def validator_for(crds: dict[str, dict[str, Any]], doc: dict[str, Any]) -> Any:
    crd = crds[doc["kind"]]
    group, version = doc["apiVersion"].split("/")
    assert crd["spec"]["group"] == group
    assert crd["spec"]["names"]["kind"] == doc["kind"]
    return crd_validator(crd, version)


@pytest.mark.parametrize("kind", list(MANIFESTS))
def test_manifest_validates_strictly_against_its_crd(
    crds: dict[str, dict[str, Any]], kind: str
) -> None:
    doc = load(kind)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_for(crds, doc).iter_errors(doc)
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("Application", ("spec", "source", "helm"), "valueFile"),
        ("GitRepository", ("spec", "ref"), "brnach"),
        ("HelmRelease", ("spec", "chart", "spec"), "valueFiles"),
    ],
)
def test_strict_validation_rejects_a_misspelled_field(
    crds: dict[str, dict[str, Any]], kind: str, path: tuple[str, ...], field: str
) -> None:
    doc = copy.deepcopy(load(kind))
    node = doc
    for key in path:
        node = node[key]
    node[field] = "x"
    messages = [e.message for e in validator_for(crds, doc).iter_errors(doc)]
    assert len(messages) == 1
    assert repr(field) in messages[0]


def manifest_tools() -> Any:
    """tests/manifests/manifest_tools.py, which names the values file the manifest tier renders."""
    spec = spec_from_file_location(
        "manifest_tools_gitops", ROOT / "tests/manifests/manifest_tools.py"
    )
    assert spec
    assert spec.loader
    module = module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_both_deploy_the_chart_with_the_gitops_values_the_manifest_tier_renders() -> None:
    tools = manifest_tools()

    app = load("Application")["spec"]["source"]
    chart = ROOT / app["path"]
    assert (chart / "Chart.yaml").is_file()
    assert [chart / f for f in app["helm"]["valueFiles"]] == [tools.GITOPS_VALUES]

    flux = load("HelmRelease")["spec"]["chart"]["spec"]
    assert (ROOT / flux["chart"]).resolve() == chart.resolve()
    # valuesFiles replaces the chart's values.yaml: it must come first, as helm applies it.
    assert [(ROOT / f).resolve() for f in flux["valuesFiles"]] == [
        (chart / "values.yaml").resolve(),
        tools.GITOPS_VALUES.resolve(),
    ]


def test_argo_cd_and_flux_install_the_same_release() -> None:
    app = load("Application")["spec"]
    release = load("HelmRelease")["spec"]
    repo = load("GitRepository")
    assert app["source"]["helm"]["releaseName"] == release["releaseName"] == "lakehouse"
    assert app["destination"]["namespace"] == release["targetNamespace"] == "lakehouse"
    assert release["chart"]["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": repo["metadata"]["name"],
    }
    assert repo["metadata"]["namespace"] == load("HelmRelease")["metadata"]["namespace"]
    assert app["source"]["repoURL"] == repo["spec"]["url"]
    assert app["source"]["targetRevision"] == repo["spec"]["ref"]["branch"]


def test_flux_kustomization_lists_every_flux_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "flux" / "kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "flux").glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def credential_keys(values: dict[str, Any]) -> set[str]:
    """Every Secret key the chart reads: the *Key fields of values.yaml's credentials block."""
    keys = set()
    for block in values["credentials"].values():
        if isinstance(block, dict):
            keys |= {v for k, v in block.items() if k.endswith("Key") and isinstance(v, str)}
    return keys


def test_guide_creates_the_secret_with_every_key_the_chart_reads() -> None:
    values = yaml.safe_load((ROOT / "charts/lakehouse/values.yaml").read_text())
    gitops = yaml.safe_load((ROOT / "charts/lakehouse/values-gitops.yaml").read_text())
    keys = credential_keys(values)
    assert {"AWS_ACCESS_KEY_ID", "POSTGRES_PASSWORD", "LAKEHOUSE_CATALOG_PASSWORD"} <= keys
    guide = (DEPLOY / "README.md").read_text()
    secret = gitops["credentials"]["existingSecret"]
    (command,) = re.findall(
        rf"kubectl[^\n]*create secret generic {secret}\b.*?(?:\n\n|```)", guide, re.DOTALL
    )
    created = set(re.findall(r"--from-literal=([A-Z_]+)=", command))
    assert created == keys, f"missing: {keys - created}, unknown: {created - keys}"


def test_manifests_name_no_local_path() -> None:
    for path in MANIFESTS.values():
        assert str(Path.home()) not in path.read_text()
        assert str(ROOT) not in path.read_text()
