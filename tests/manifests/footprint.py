"""`make footprint`: requests of the default render per component, the reserved workloads and
the total against the budget of issue 5. Exits non-zero when the budget is exceeded."""

from __future__ import annotations

import sys

from manifest_tools import (
    BUDGET_CPU,
    BUDGET_MEMORY,
    Renderer,
    ensure_tools,
    footprint,
    format_footprint,
    load_docs,
    read_versions,
)


def main() -> int:
    renderer = Renderer(helm=ensure_tools(), kube_version=read_versions()["KUBERNETES_VERSION"])
    rows = footprint(load_docs(renderer.render()))
    print(format_footprint(rows))
    total_cpu = sum(c for c, _ in rows.values())
    total_mem = sum(m for _, m in rows.values())
    return 0 if total_cpu <= BUDGET_CPU and total_mem <= BUDGET_MEMORY else 1


if __name__ == "__main__":
    sys.exit(main())
