"""deploy/: the Argo CD Application and the Flux GitRepository + HelmRelease, validated strictly
against the CRDs of the pinned Argo CD and Flux releases (their Go modules carry them), pointing
at the chart and the GitOps values the manifest tier renders, with the Secret the guide creates."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_tools import DEPLOY, ROOT, ModuleUnavailableError, crd_validator, go_module_dir
from script_modules import load_module

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
    return load_module("tests/manifests/manifest_tools.py")


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


# ---------------------------------------------------------------------------------------------
# The kind GitOps deploy (scripts/gitops.py, scripts/gitops.sh, deploy/flux/system, git-server)


def gitops_module() -> Any:
    return load_module("scripts/gitops.py")


GITOPS = gitops_module()
KIND_URL = "http://git-server.git-server.svc.cluster.local/git/lakehouse.git"


def kind_objects() -> list[dict[str, Any]]:
    return GITOPS.kind_objects(
        KIND_URL,
        "lakehouse-git",
        "1m",
        [str(ROOT / "charts/lakehouse/values-kind.yaml"), "charts/lakehouse/values-small.yaml"],
    )


def test_kind_objects_validate_strictly_against_the_crds(crds: dict[str, dict[str, Any]]) -> None:
    for doc in kind_objects():
        errors = [e.message for e in validator_for(crds, doc).iter_errors(doc)]
        assert not errors, f"{doc['kind']}: {errors}"


def test_kind_objects_change_only_url_credentials_interval_and_extra_values() -> None:
    repo, release = kind_objects()
    assert repo["spec"]["url"] == KIND_URL
    assert repo["spec"]["secretRef"] == {"name": "lakehouse-git"}
    assert repo["spec"]["interval"] == "1m"
    assert repo["spec"]["ref"] == {"branch": "main"}
    assert release["spec"]["chart"]["spec"]["valuesFiles"] == [
        "./charts/lakehouse/values.yaml",
        "./charts/lakehouse/values-gitops.yaml",
        "./charts/lakehouse/values-kind.yaml",
        "./charts/lakehouse/values-small.yaml",
    ]
    original_repo, original_release = load("GitRepository"), load("HelmRelease")
    for key in ("url", "secretRef", "interval", "ref"):
        repo["spec"].pop(key)
        original_repo["spec"].pop(key, None)
    assert repo == original_repo
    release["spec"]["chart"]["spec"].pop("valuesFiles")
    original_release["spec"]["chart"]["spec"].pop("valuesFiles")
    assert release == original_release


def test_a_values_file_outside_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "mine.yaml"
    outside.write_text("settings: {}\n")
    with pytest.raises(GITOPS.GitOpsError, match="outside the repository"):
        GITOPS.kind_objects(KIND_URL, "s", "1m", [str(outside)])


def test_the_guide_command_creates_the_secret_with_fresh_random_values(tmp_path: Path) -> None:
    """gitops.sh runs the guide's block as it is; here kubectl is a shell function that records
    its arguments, so the command itself runs (openssl included) without a cluster."""
    import base64
    import shutil

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: the guide's command needs it")
    block = GITOPS.secret_command((DEPLOY / "README.md").read_text())
    record = tmp_path / "calls"
    runs = []
    for _ in range(2):
        script = f'kubectl() {{ printf "%s\\n" "$*" >>"{record}"; }}\n{block}'
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        calls = record.read_text().splitlines()
        record.unlink()
        assert calls[0] == "create namespace lakehouse"
        literals = dict(re.findall(r"--from-literal=([A-Z_]+)=(\S*)", calls[1]))
        runs.append(literals)
    first, second = runs
    assert all(first.values()), first
    assert len(base64.urlsafe_b64decode(first["AIRFLOW_FERNET_KEY"])) == 32
    generated = {k for k in first if not k.endswith("_USER")}
    assert all(first[k] != second[k] for k in generated), "a credential was not random"


def test_release_state_follows_the_commit_flux_attempted() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    meta = {"generation": 3}

    def release(attempted: str, ready: str, stalled: str = "False", generation: int = 3) -> dict:
        conditions = [
            {
                "type": "Ready",
                "status": ready,
                "reason": "r",
                "message": "m",
                "observedGeneration": generation,
            },
            {"type": "Stalled", "status": stalled, "message": "values don't meet the schema"},
        ]
        return {
            "metadata": meta,
            "status": {"lastAttemptedRevision": attempted, "conditions": conditions},
        }

    assert GITOPS.built_from("0.1.0+0123456789ab.1", sha)
    assert GITOPS.built_from("0.1.0+0123456789ab", sha)
    assert not GITOPS.built_from("0.1.0+0123456789abc", sha)
    assert not GITOPS.built_from("0.1.0+0123456789ab.1x", sha)
    assert GITOPS.release_state(release("0.1.0+0123456789ab.1", "True"), sha)[0] == "ready"
    assert GITOPS.release_state(release("0.1.0+ffffffffffff", "True"), sha)[0] == "pending"
    assert (
        GITOPS.release_state(release("0.1.0+0123456789ab.1", "True", generation=2), sha)[0]
        == "pending"
    )
    assert GITOPS.release_state(release("0.1.0+0123456789ab.1", "False"), sha)[0] == "pending"
    state, message = GITOPS.release_state(release("0.1.0+0123456789ab.1", "False", "True"), sha)
    assert (state, message) == ("failed", "values don't meet the schema")


SYSTEM = DEPLOY / "flux" / "system"
GIT_SERVER = DEPLOY / "flux" / "git-server"


def folder_docs(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    return [d for f in files for d in yaml.safe_load_all((folder / f).read_text()) if d]


@pytest.mark.parametrize("folder", [SYSTEM, GIT_SERVER], ids=["flux-system", "git-server"])
def test_gitops_manifests_are_valid_for_the_pinned_kubernetes(folder: Path) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate missing: the dev extra provides it"
    )
    for doc in folder_docs(folder):
        kubernetes_validate.validate(doc, versions()["KUBERNETES_VERSION"], strict=True)


@pytest.mark.parametrize("folder", [SYSTEM, GIT_SERVER], ids=["flux-system", "git-server"])
def test_gitops_pods_run_like_the_charts(folder: Path) -> None:
    from images.build_args import image_tag

    deployments = [d for d in folder_docs(folder) if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]) == {"requests", "limits"}
            assert container["image"] in (image_tag("flux"), image_tag("git-server"))
    names = {d["metadata"]["name"] for d in deployments}
    assert names in ({"source-controller", "helm-controller"}, {"git-server"})


def test_source_controller_gets_exactly_the_rules_of_its_module() -> None:
    """The upstream manager role of the pinned source-controller, nothing more or less."""
    try:
        folder = go_module_dir(
            versions()["FLUX_SOURCE_CONTROLLER_MODULE"],
            versions()["FLUX_SOURCE_CONTROLLER_VERSION"],
        )
    except ModuleUnavailableError as exc:
        pytest.skip(f"the source-controller module cannot be downloaded here: {exc}")
    upstream = yaml.safe_load((folder / "config/rbac/role.yaml").read_text())["rules"]
    (ours,) = [
        d
        for d in folder_docs(SYSTEM)
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "flux-source-controller"
    ]

    def flat(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {
            (g, r, v)
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }

    assert flat(ours["rules"]) == flat(upstream)


def test_only_helm_controller_is_bound_to_cluster_admin() -> None:
    bindings = [
        d for d in folder_docs(SYSTEM) if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
    ]
    admin = [b for b in bindings if b["roleRef"]["name"] == "cluster-admin"]
    assert [s["name"] for b in admin for s in b["subjects"]] == ["helm-controller"]
