"""`make footprint`: requests of each values profile's render per component, the reserved
workloads (one Spark driver + executor, one training pod) and the total against the profile's
budget: the default install and the small-machine profile (values-small.yaml on
values-kind.yaml). Exits non-zero when a budget is exceeded."""

from __future__ import annotations

import sys

from manifest_tools import (
    PROFILES,
    Renderer,
    ensure_tools,
    footprint,
    format_footprint,
    load_docs,
    read_versions,
    within,
)


def main() -> int:
    renderer = Renderer(helm=ensure_tools(), kube_version=read_versions()["KUBERNETES_VERSION"])
    ok = True
    for name, profile in PROFILES.items():
        files = " + ".join(v.name for v in profile.values) or "values.yaml"
        print(f"\n## {name} ({files})")
        rows = footprint(load_docs(renderer.render(profile.values)))
        print(format_footprint(rows, profile))
        if not within(rows, profile):
            print(f"over the {name} budget")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
