"""What several test tiers share about the cluster: the settings ConfigMap and the pipeline
contract of the chart's default install, rendered by the pinned helm (never typed here, so they
cannot drift from the chart), and the strict reading of a CRD schema the API server applies."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

MANIFESTS = Path(__file__).resolve().parent / "manifests"


@functools.cache
def render_default_install(sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """`helm template lakehouse charts/lakehouse -n lakehouse` (plus ``--set``s), parsed."""
    if str(MANIFESTS) not in sys.path:
        sys.path.insert(0, str(MANIFESTS))
    import pytest
    from manifest_tools import Renderer, ToolMissingError, ensure_tools, load_docs, read_versions

    try:
        helm = ensure_tools()
    except ToolMissingError as error:
        pytest.skip(f"the chart cannot be rendered here: {error}")
    return load_docs(Renderer(helm, read_versions()["KUBERNETES_VERSION"]).render(sets=sets))


def _configmap_data(name: str) -> dict[str, str]:
    (cm,) = [
        d
        for d in render_default_install()
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
    ]
    return dict(cm["data"])


def chart_env() -> dict[str, str]:
    """The settings ConfigMap of `helm install lakehouse charts/lakehouse -n lakehouse`."""
    return _configmap_data("lakehouse-settings")


def pipeline_contract() -> str:
    """The pipeline contract (JSON) the same install gives the Airflow pods."""
    return _configmap_data("lakehouse-pipeline")["deployment.json"]


def worker_env() -> dict[str, str]:
    """What an Airflow worker of that install renders its tasks with: the settings ConfigMap
    (envFrom) plus the pipeline contract (LAKEHOUSE_K8S_DEPLOYMENT)."""
    return {**chart_env(), "LAKEHOUSE_K8S_DEPLOYMENT": pipeline_contract()}


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever it lists the known ones, as the API
    server's strict field validation does (unless the schema preserves unknown fields)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema
