"""Policy: checkov's Kubernetes checks on the objects our templates render, zero unlisted failures.

checkov runs from its own environment, .tools/checkov (`make tools-checkov`; its pins conflict
with uv.lock). It reads one file of rendered objects, offline (--skip-download).

Scope: every object rendered from lakehouse/templates/, plus the pods kept as YAML in those
ConfigMaps (the Airflow worker pod template). The upstream spark-operator chart's
objects are left out: their templates are not ours to fix, and what they fail is inherent to an
operator (its controller and webhook need a service-account token; the webhook's ClusterRole
manages webhook configurations) or upstream packaging (no digests, no namespace field, uid 185).
The values we pass it are held to the per-pod security policy in test_chart_policy.py instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from manifest_tools import CHART_SRC, CHART_TOOLS, GITOPS_VALUES, ROOT, Renderer, load_docs

CHECKOV = Path(os.environ.get("CHECKOV_ENV") or ROOT / ".tools" / "checkov") / "bin" / "checkov"
OUR_SOURCE = "lakehouse/templates/"
UPSTREAM_SOURCE = "lakehouse/charts/spark-operator/"


class Skip(NamedTuple):
    reason: str
    # app.kubernetes.io/component values the skip is limited to; empty: every object of ours.
    components: tuple[str, ...] = ()


# The one list of checkov failures accepted on our objects: check id -> why (and where).
# test_every_skip_is_still_needed fails as soon as one of them no longer fails (for each listed
# component).
SKIPS: dict[str, Skip] = {
    "CKV_K8S_43": Skip(
        "Image digests: the defaults are pinned tags. lakehouse/* images (seaweedfs and "
        "postgres among them) are built locally and loaded with `kind load`, so no registry "
        "digest exists for them; the digest of the minio image (objectStore.server=minio) "
        "cannot be read from these machines (no container registry) and an unverified digest "
        "would be worse than a tag. Every image block has `digest`; set, it clears this check "
        "(test_image_digests_clear_the_image_skips)."
    ),
    "CKV_K8S_15": Skip(
        "imagePullPolicy Always: images loaded with `kind load` exist on the node only, so "
        "Always would fail to start them; IfNotPresent is exact once `digest` is set, and then "
        "this check passes (test_image_digests_clear_the_image_skips)."
    ),
    "CKV_K8S_35": Skip(
        "Secrets as environment variables: the project's contract is one credentials Secret "
        "consumed as env vars (Spark's S3A and boto3 read AWS_*, libpq PGPASSWORD, the "
        "postgres image its superuser password, the seaweedfs image's entrypoint the S3 key "
        "pair it writes its identities file from, minio its root user, Airflow its "
        "connections); values come from secretKeyRef, never from the manifests."
    ),
    "CKV_K8S_8": Skip(
        "Liveness probe on the Airflow worker pod: it runs one task to completion "
        "(restartPolicy Never), as a Job does, which checkov exempts; a probe could only kill "
        "a running task.",
        ("airflow-worker",),
    ),
    "CKV_K8S_9": Skip(
        "Readiness probe on the Airflow worker pod: no Service sends it traffic, it runs one "
        "task to completion (restartPolicy Never), as a Job does, which checkov exempts.",
        ("airflow-worker",),
    ),
    "CKV_K8S_40": Skip(
        "High uid on the Jupyter pod: it runs as the lakehouse/jupyter image's user, 185 of the "
        "spark base image, because Hadoop's login (S3A, inside the notebooks' Spark) looks the "
        "uid up in /etc/passwd and fails for a uid the image has no entry for; the Spark "
        "pods the DAGs start run as 185 too. Every other pod of ours runs as 10001 or 50000.",
        ("jupyter",),
    ),
}
IMAGE_CHECKS = {"CKV_K8S_43", "CKV_K8S_15"}
# The optional Jupyter seed service, scanned in a render of its own (off by default).
JUPYTER = ("jupyter.enabled=true",)
# The other bundled object store, one value away from the default SeaweedFS.
MINIO = ("objectStore.server=minio",)
# Kinds checkov 3.3 checks (its default-namespace check covers them all); NetworkPolicies have none.
CHECKED_KINDS = {
    "Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job",
    "CronJob", "Service", "Secret", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Ingress",
}  # fmt: skip


class Failure(NamedTuple):
    check_id: str
    resource: str
    name: str
    component: str


def split_sources(rendered: str) -> list[tuple[str, str]]:
    """(template path, document text) of every document of a `helm template` output."""
    out = []
    for chunk in re.split(r"^---[ \t]*$", rendered, flags=re.MULTILINE):
        match = re.search(r"^# Source: (\S+)", chunk, flags=re.MULTILINE)
        if match and chunk.strip():
            out.append((match.group(1), chunk.strip() + "\n"))
    return out


def embedded_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods kept as YAML in ConfigMaps (the executor's worker pod template), in the ConfigMap's
    namespace, where the executor creates them."""
    import yaml

    pods = []
    for cm in (d for d in objects if d["kind"] == "ConfigMap"):
        for value in cm.get("data", {}).values():
            try:
                doc = yaml.safe_load(value)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and doc.get("kind") == "Pod":
                doc.setdefault("metadata", {}).setdefault("namespace", cm["metadata"]["namespace"])
                pods.append(doc)
    return pods


def our_documents(rendered: str) -> str:
    """The documents rendered from our own templates plus the pods embedded in them, as one
    YAML stream."""
    import yaml

    docs = [text for source, text in split_sources(rendered) if source.startswith(OUR_SOURCE)]
    pods = [
        yaml.safe_dump(p, sort_keys=False) for p in embedded_pods(load_docs("---\n".join(docs)))
    ]
    return "---\n" + "---\n".join(docs + pods)


def resource_id(doc: dict[str, Any]) -> str:
    """checkov's name of an object: Kind.namespace.name (namespace "default" when absent)."""
    meta = doc["metadata"]
    return f"{doc['kind']}.{meta.get('namespace', 'default')}.{meta['name']}"


def components(objects: list[dict[str, Any]]) -> dict[str, str]:
    """checkov resource id -> app.kubernetes.io/component of each object."""
    labels = {resource_id(d): d["metadata"].get("labels", {}) for d in objects}
    return {k: v.get("app.kubernetes.io/component", "") for k, v in labels.items()}


def failures(report: dict[str, Any], objects: list[dict[str, Any]]) -> list[Failure]:
    component = components(objects)
    return sorted(
        Failure(f["check_id"], f["resource"], f["check_name"], component.get(f["resource"], ""))
        for f in report["results"]["failed_checks"]
    )


def accepted(failure: Failure, skips: dict[str, Skip]) -> bool:
    skip = skips.get(failure.check_id)
    return skip is not None and (not skip.components or failure.component in skip.components)


def scanned_resources(report: dict[str, Any]) -> set[str]:
    results = report["results"]
    return {r["resource"] for r in results["passed_checks"] + results["failed_checks"]}


def image_digest_sets(values: Any, prefix: str = "") -> list[str]:
    """`--set <path>.digest=sha256:...` for every image block (repository + tag + digest)."""
    if not isinstance(values, dict):
        return []
    if {"repository", "tag", "digest"} <= values.keys():
        return [f"{prefix}digest=sha256:{'0' * 64}"]
    out = []
    for key, value in values.items():
        out += image_digest_sets(value, f"{prefix}{key}.")
    return out


def run_checkov(checkov: Path, objects: str, workdir: Path) -> dict[str, Any]:
    target = workdir / "objects.yaml"
    target.write_text(objects)
    # HELM_NAMESPACE would make the default-namespace check pass without a namespace field.
    env = {k: v for k, v in os.environ.items() if k != "HELM_NAMESPACE"}
    proc = subprocess.run(
        [str(checkov), "--file", str(target), "--framework", "kubernetes", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, check=False, env=env, cwd=workdir,
    )  # fmt: skip
    # 0: every check passed, 1: some failed; anything else is checkov itself failing.
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["check_type"] == "kubernetes"
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


@pytest.fixture(scope="module")
def checkov() -> Path:
    proc = subprocess.run(
        ["bash", str(CHART_TOOLS), "checkov"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"checkov cannot be installed here (make tools-checkov):\n{proc.stderr}")
    return CHECKOV


@pytest.fixture(scope="module")
def renders(renderer: Renderer) -> dict[str, str]:
    return {
        "default": renderer.render(),
        "gitops": renderer.render((GITOPS_VALUES,)),
        "jupyter": renderer.render(sets=JUPYTER),
        "minio": renderer.render(sets=MINIO),
    }


@pytest.fixture(scope="module")
def reports(
    checkov: Path, renders: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    return {
        name: run_checkov(checkov, our_documents(text), tmp_path_factory.mktemp(name))
        for name, text in renders.items()
    }


@pytest.fixture(scope="module")
def found(reports: dict, renders: dict[str, str]) -> dict[str, list[Failure]]:
    """Every failure per render, before any skip."""
    return {k: failures(reports[k], load_docs(our_documents(renders[k]))) for k in reports}


def test_checkov_is_the_pinned_version(reports: dict, versions: dict[str, str]) -> None:
    for report in reports.values():
        assert report["summary"]["checkov_version"] == versions["CHECKOV_VERSION"]


def test_only_upstream_objects_are_left_out(renders: dict[str, str]) -> None:
    for text in renders.values():
        sources = {source for source, _ in split_sources(text)}
        ours = {s for s in sources if s.startswith(OUR_SOURCE)}
        upstream = {s for s in sources if s.startswith(UPSTREAM_SOURCE)}
        assert ours
        assert upstream
        assert sources - ours - upstream == set()


@pytest.mark.parametrize("values", ["default", "gitops", "jupyter", "minio"])
def test_no_unlisted_checkov_failures(
    values: str, reports: dict, renders: dict, found: dict
) -> None:
    report = reports[values]
    objects = load_docs(our_documents(renders[values]))
    # checkov saw every object of ours that it has checks for, and ran a real number of checks.
    checked = {resource_id(d) for d in objects if d["kind"] in CHECKED_KINDS}
    assert len(checked) >= 8
    assert checked <= scanned_resources(report)
    assert report["summary"]["passed"] >= 10 * len(objects)
    unlisted = [f for f in found[values] if not accepted(f, SKIPS)]
    assert unlisted == []


@pytest.mark.parametrize("check_id", sorted(SKIPS))
def test_every_skip_is_still_needed(check_id: str, found: dict) -> None:
    skip = SKIPS[check_id]
    assert len(skip.reason) > 40, "say why the check is skipped"
    failing = {f.component for fs in found.values() for f in fs if f.check_id == check_id}
    assert failing, f"{check_id} passes now: remove it from SKIPS"
    assert set(skip.components) - failing == set(), f"{check_id} passes there now: narrow it"


def test_pods_embedded_in_configmaps_are_scanned() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec: {containers: []}\n"
    cm = {"kind": "ConfigMap", "metadata": {"name": "t", "namespace": "ns"}}
    objects = [{**cm, "data": {"pod.yaml": pod, "note": "not: [yaml", "x": "plain"}}]
    assert embedded_pods(objects) == [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "ns"},
         "spec": {"containers": []}}
    ]  # fmt: skip


def test_scoped_skips_accept_only_their_components() -> None:
    skips = {"CKV_X": Skip("a reason", ("mlflow",))}
    assert accepted(Failure("CKV_X", "Deployment.ns.a", "n", "mlflow"), skips)
    assert not accepted(Failure("CKV_X", "Deployment.ns.b", "n", "minio"), skips)
    assert not accepted(Failure("CKV_Y", "Deployment.ns.a", "n", "mlflow"), skips)
    assert accepted(Failure("CKV_X", "Job.ns.c", "n", "minio"), {"CKV_X": Skip("all")})


@pytest.mark.parametrize("server", [(), MINIO], ids=["seaweedfs", "minio"])
def test_image_digests_clear_the_image_skips(
    checkov: Path, renderer: Renderer, tmp_path: Path, server: tuple[str, ...]
) -> None:
    import yaml

    sets = image_digest_sets(yaml.safe_load((CHART_SRC / "values.yaml").read_text()))
    assert {
        "objectStore.seaweedfs.image.digest", "objectStore.minio.image.digest",
        "objectStore.bucketInit.image.digest", "postgres.image.digest", "mlflow.image.digest",
    } <= {s.split("=")[0] for s in sets}  # fmt: skip
    objects = our_documents(renderer.render(sets=(*sets, *server)))
    failed = failures(run_checkov(checkov, objects, tmp_path), load_docs(objects))
    assert [f for f in failed if f.check_id in IMAGE_CHECKS] == []
    assert [f for f in failed if not accepted(f, SKIPS)] == []
