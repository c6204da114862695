"""Fixtures of the manifest tier: the pinned helm, the assembled chart and its renders."""

from __future__ import annotations

from typing import Any

import pytest
from airflow_tools import RENDERS
from manifest_tools import (
    GITOPS_VALUES,
    Renderer,
    ToolMissingError,
    ensure_tools,
    load_docs,
    read_versions,
)


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    return read_versions()


@pytest.fixture(scope="session")
def renderer(versions: dict[str, str]) -> Renderer:
    pytest.importorskip("yaml", reason="PyYAML missing: add it to the dev extra (charts README)")
    try:
        helm = ensure_tools()
    except ToolMissingError as exc:
        pytest.skip(f"helm or the spark-operator chart cannot be installed here: {exc}")
    return Renderer(helm=helm, kube_version=versions["KUBERNETES_VERSION"])


@pytest.fixture(scope="session")
def default_docs(renderer: Renderer) -> list[dict[str, Any]]:
    return load_docs(renderer.render())


@pytest.fixture(scope="session")
def gitops_text(renderer: Renderer) -> str:
    return renderer.render((GITOPS_VALUES,))


@pytest.fixture(scope="session")
def gitops_docs(gitops_text: str) -> list[dict[str, Any]]:
    return load_docs(gitops_text)


@pytest.fixture(scope="session")
def renders(renderer: Renderer, default_docs: list[dict[str, Any]]) -> dict[str, list[dict]]:
    """The default, kind and GitOps renders (airflow_tools.RENDERS), parsed."""
    out = {name: load_docs(renderer.render(values)) for name, values in RENDERS.items() if values}
    out["default"] = default_docs
    return out
