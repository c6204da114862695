"""A chart that Flux builds from git (HelmChart reconcileStrategy Revision) gets the commit as
version metadata, 0.1.0+<12 hex digits>, so every commit is a new chart version. Two commits
that change neither templates nor values must render the same pods and Jobs: a pod template
that carried the chart version would restart every pod on every commit, and a Job (its name
hashes the values only) would fail the upgrade, its template being immutable."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from manifest_tools import CHART_BUILD, GITOPS_VALUES, NAMESPACE, RELEASE, Renderer, load_docs

CHART_LABEL = "helm.sh/chart"


def render_as_version(renderer: Renderer, workdir: Path, version: str) -> list[dict[str, Any]]:
    chart = workdir / version / "lakehouse"
    shutil.copytree(CHART_BUILD, chart)
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"^version: .*$", f"version: {version}", meta.read_text(), flags=re.M))
    proc = renderer.run(
        "template", RELEASE, str(chart), "--namespace", NAMESPACE,
        "--kube-version", renderer.kube_version, "--values", str(GITOPS_VALUES),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return load_docs(proc.stdout)


def without_object_chart_label(doc: dict[str, Any]) -> dict[str, Any]:
    """The object with helm.sh/chart removed from its own metadata only (nested pod templates
    keep theirs, so a chart version inside them still shows as a difference)."""
    labels = {k: v for k, v in doc["metadata"].get("labels", {}).items() if k != CHART_LABEL}
    return {**doc, "metadata": {**doc["metadata"], "labels": labels}}


def test_two_commits_render_the_same_pods_and_jobs(renderer: Renderer, tmp_path: Path) -> None:
    first = render_as_version(renderer, tmp_path, "0.1.0+0123456789ab")
    second = render_as_version(renderer, tmp_path, "0.1.0+ba9876543210")
    ours = [
        d
        for d in first
        if d["metadata"].get("labels", {}).get(CHART_LABEL, "").startswith("lakehouse-")
    ]
    assert ours, "no object carries the chart label: the test would compare nothing"
    assert {d["metadata"]["labels"][CHART_LABEL] for d in ours} == {"lakehouse-0.1.0_0123456789ab"}
    assert len(first) == len(second)
    differing = [
        f"{a['kind']}/{a['metadata']['name']}"
        for a, b in zip(first, second, strict=True)
        if without_object_chart_label(a) != without_object_chart_label(b)
    ]
    assert differing == [], f"these change with the commit alone: {differing}"
