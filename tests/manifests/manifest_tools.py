"""Render the lakehouse chart with the pinned helm and read what it renders.

Shared by the manifest tests and `make footprint` (footprint.py). Tools come from the registries
only, through charts/scripts/chart-tools.sh (helm via `go install`, the spark-operator chart via
its Go module); nothing here downloads anything else.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from lakehouse.versions import versions

ROOT = Path(__file__).resolve().parents[2]
CHART_SRC = ROOT / "charts" / "lakehouse"
CHART_BUILD = ROOT / "charts" / ".build" / "lakehouse"
CHART_TOOLS = ROOT / "charts" / "scripts" / "chart-tools.sh"
GITOPS_VALUES = CHART_SRC / "values-gitops.yaml"
NAMESPACE = "lakehouse"
RELEASE = "lakehouse"

# Footprint budget of the default install: every pod of the default install plus one running Spark
# application (driver + one executor) and one training pod.
BUDGET_CPU = Fraction(3)
BUDGET_MEMORY = 6 * 2**30
KIND_VALUES = CHART_SRC / "values-kind.yaml"
SMALL_VALUES = CHART_SRC / "values-small.yaml"


@dataclass(frozen=True)
class Profile:
    """A values profile the footprint is held to: its values files and its budget."""

    values: tuple[Path, ...]
    cpu: Fraction
    memory: int


# The small-machine profile (values-small.yaml, 2 cores and about 8 GiB for the whole cluster):
# the node's 2 CPUs less the ~0.95 CPU kind's control plane requests; memory as the default.
PROFILES = {
    "default": Profile((), BUDGET_CPU, BUDGET_MEMORY),
    "small": Profile((KIND_VALUES, SMALL_VALUES), Fraction(1), BUDGET_MEMORY),
}

# Workloads that are not rendered by the chart but run inside the budget: the largest Spark
# application (driver + its executors) and the largest stage pod the DAGs start, read from the
# DAG templates by reserved_workloads.py.
RESERVED_SCRIPT = Path(__file__).with_name("reserved_workloads.py")
# The sizing the DAG templates document in their comments. The budget does not use it (it reads
# the rendered templates); tests/dags holds the templates to it, so a resize is a deliberate edit.
RESERVED: dict[str, tuple[str, str]] = {
    "spark-driver (reserved)": ("500m", "1433Mi"),  # 1g + 0.4 * 1g overhead
    "spark-executor (reserved)": ("500m", "1433Mi"),
    "training-pod (reserved)": ("250m", "1Gi"),
}
# Environment of the caller that must not leak into the DAG rendering (the lakehouse settings
# come from the rendered ConfigMap instead).
_FOREIGN_ENV = ("LAKEHOUSE_", "AWS_", "MLFLOW_")


class ToolMissingError(RuntimeError):
    """A tool could not be installed here (the message says which and why)."""


def read_versions() -> dict[str, str]:
    """The project's one version matrix (versions.env)."""
    return dict(versions())


def _chart_tools(command: str) -> None:
    proc = subprocess.run(
        ["bash", str(CHART_TOOLS), command], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolMissingError(f"chart-tools.sh {command} failed:\n{proc.stdout}{proc.stderr}")


def ensure_tools() -> Path:
    """Build helm and assemble the chart build folder if needed; return the helm binary."""
    helm = Path(os.environ.get("HELM") or ROOT / ".tools" / "bin" / "helm")
    if "HELM" not in os.environ:
        if shutil.which("go") is None:
            raise ToolMissingError("the Go toolchain is not installed: helm cannot be built")
        _chart_tools("helm")
    _chart_tools("deps")
    return helm


@dataclass(frozen=True)
class Renderer:
    helm: Path
    kube_version: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.helm), *args], capture_output=True, text=True, check=False)

    def template(
        self,
        values: tuple[Path, ...] = (),
        sets: tuple[str, ...] = (),
        *,
        include_crds: bool = False,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", release, str(CHART_BUILD), "--namespace", namespace]
        args += ["--kube-version", self.kube_version]
        for v in values:
            args += ["--values", str(v)]
        for s in sets:
            args += ["--set", s]
        if include_crds:
            args.append("--include-crds")
        return self.run(*args)

    def render(
        self,
        values: tuple[Path, ...] = (),
        sets: tuple[str, ...] = (),
        *,
        include_crds: bool = False,
    ) -> str:
        proc = self.template(values, sets, include_crds=include_crds)
        if proc.returncode != 0:
            raise AssertionError(f"helm template failed:\n{proc.stderr}")
        return proc.stdout


def load_docs(text: str) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod spec) for every workload object."""
    out = []
    for doc in docs:
        path = POD_TEMPLATE_PATHS.get(doc.get("kind", ""))
        if path is None:
            continue
        spec: Any = doc
        for key in path:
            spec = spec[key]
        out.append((doc, spec))
    return out


def is_ours(doc: dict[str, Any]) -> bool:
    """Objects rendered by our templates (not by the upstream spark-operator chart)."""
    labels = doc.get("metadata", {}).get("labels", {})
    return labels.get("helm.sh/chart", "").startswith("lakehouse-")


_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
_MEM = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEM_UNITS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def cpu(quantity: str | int | float) -> Fraction:
    match = _CPU.match(str(quantity))
    if not match:
        raise ValueError(f"not a CPU quantity: {quantity!r}")
    value = Fraction(match.group(1))
    return value / 1000 if match.group(2) else value


def memory(quantity: str | int) -> int:
    match = _MEM.match(str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(Fraction(match.group(1)) * _MEM_UNITS[match.group(2)])


def pod_requests(spec: dict[str, Any]) -> tuple[Fraction, int]:
    """Effective requests of one pod: sum of containers, or the largest init container."""

    def total(containers: list[dict[str, Any]]) -> tuple[Fraction, int]:
        c, m = Fraction(0), 0
        for container in containers:
            req = container.get("resources", {}).get("requests", {})
            c += cpu(req.get("cpu", 0))
            m += memory(req.get("memory", 0))
        return c, m

    c, m = total(spec.get("containers", []))
    for init in spec.get("initContainers", []):
        ic, im = total([init])
        c, m = max(c, ic), max(m, im)
    return c, m


def worker_pod_templates(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Airflow worker Pod(s) kept as pod_template.yaml in a rendered ConfigMap."""
    import yaml

    return [
        yaml.safe_load(doc["data"]["pod_template.yaml"])
        for doc in docs
        if doc.get("kind") == "ConfigMap" and "pod_template.yaml" in doc.get("data", {})
    ]


def settings_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The data of the rendered settings ConfigMap (the DAGs' workers get it with envFrom)."""
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-settings") and is_ours(d)
    ]
    return dict(cm["data"])


def dag_render_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """What the DAGs render their pods with: the settings ConfigMap plus the LAKEHOUSE_* values
    the chart gives the Airflow worker pods (the pipeline contract: images, pull policy, CPU
    requests), values and ConfigMap keys resolved against the same render."""
    env = settings_data(docs)
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    for pod in worker_pod_templates(docs):
        for container in pod["spec"]["containers"]:
            for e in container.get("env", []):
                if not e["name"].startswith("LAKEHOUSE_"):
                    continue
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    env[e["name"]] = configmaps[ref["name"]][ref["key"]]
                elif "value" in e:
                    env[e["name"]] = e["value"]
    return env


@functools.cache
def reserved_workloads(settings: tuple[tuple[str, str], ...]) -> dict[str, tuple[Fraction, int]]:
    """Requests of the largest Spark application and stage pod, as the DAGs render them with
    these lakehouse settings (reserved_workloads.py in a subprocess: Airflow stays out of this
    process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(RESERVED_SCRIPT)], env=env, cwd=ROOT,
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"{RESERVED_SCRIPT.name} failed:\n{proc.stdout}{proc.stderr}")
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (Fraction(c), int(m)) for name, (c, m) in rows.items()}


def footprint(docs: list[dict[str, Any]]) -> dict[str, tuple[Fraction, int]]:
    """Requests per component (replicas counted), plus the reserved workloads."""
    sums: dict[str, list[Any]] = defaultdict(lambda: [Fraction(0), 0])
    for doc, spec in pod_specs(docs):
        labels = doc["metadata"].get("labels", {})
        name = labels.get("app.kubernetes.io/component") or doc["metadata"]["name"]
        if not is_ours(doc):
            name = f"spark-operator-{name}"
        replicas = doc.get("spec", {}).get("replicas", 1) if doc["kind"] != "Job" else 1
        c, m = pod_requests(spec)
        sums[name][0] += c * replicas
        sums[name][1] += m * replicas
    for name, (c, m) in reserved_workloads(tuple(sorted(dag_render_env(docs).items()))).items():
        sums[name] = [c, m]
    # One KubernetesExecutor worker pod runs per task: reserve one, as its template renders.
    for spec in worker_pod_templates(docs):
        sums["airflow-worker (reserved)"] = list(pod_requests(spec["spec"]))
    return {k: (v[0], v[1]) for k, v in sorted(sums.items())}


def within(rows: dict[str, tuple[Fraction, int]], profile: Profile) -> bool:
    return (
        sum(c for c, _ in rows.values()) <= profile.cpu
        and sum(m for _, m in rows.values()) <= profile.memory
    )


def format_footprint(rows: dict[str, tuple[Fraction, int]], profile: Profile) -> str:
    lines = [f"{'component':32} {'cpu':>8} {'memory':>10}"]
    total_c, total_m = Fraction(0), 0
    for name, (c, m) in rows.items():
        lines.append(f"{name:32} {float(c):>7.3f}  {m / 2**20:>7.0f}Mi")
        total_c += c
        total_m += m
    lines.append(f"{'TOTAL':32} {float(total_c):>7.3f}  {total_m / 2**20:>7.0f}Mi")
    lines.append(f"{'BUDGET':32} {float(profile.cpu):>7.3f}  {profile.memory / 2**20:>7.0f}Mi")
    return "\n".join(lines)


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container starts with, resolved from the rendered ConfigMaps and
    Secrets as the kubelet does (envFrom first, env entries override; $(VAR) not expanded)."""
    import base64

    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    secrets = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "Secret"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]
        if "secretKeyRef" in ref:
            data = secrets[ref["secretKeyRef"]["name"]]
            env[entry["name"]] = base64.b64decode(data[ref["secretKeyRef"]["key"]]).decode()
        else:
            cm = ref["configMapKeyRef"]
            env[entry["name"]] = configmaps[cm["name"]][cm["key"]]
    return env


def render_notes(renderer: Renderer, workdir: Path, sets: tuple[str, ...] = ()) -> str:
    """NOTES.txt as helm renders it (`helm template` skips NOTES: it is rendered here as the
    body of a plain template in a copy of the assembled chart)."""
    import yaml

    chart = workdir / "lakehouse"
    shutil.copytree(CHART_BUILD, chart)
    templates = chart / "templates"
    notes = (templates / "NOTES.txt").read_text()
    (templates / "NOTES.txt").unlink()
    (templates / "_notes.tpl").write_text(
        '{{- define "notes.body" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (templates / "notes.yaml").write_text('notes: |\n  {{- include "notes.body" . | nindent 2 }}\n')
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for s in sets:
        args += ["--set", s]
    proc = renderer.run(*args, "--show-only", "templates/notes.yaml")
    if proc.returncode != 0:
        raise AssertionError(f"helm template of NOTES.txt failed:\n{proc.stderr}")
    return yaml.safe_load(proc.stdout)["notes"]


def invalid_objects(docs: list[dict[str, Any]], kube_version: str) -> list[str]:
    """``Kind/name: error`` for every object that fails strict validation against the
    Kubernetes schemas of ``kube_version`` (all of them, so one failure lists every problem)."""
    import kubernetes_validate

    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except Exception as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    return errors
