"""Security policy per pod, Services, NetworkPolicies and the footprint budget."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_tools import (
    Renderer,
    cpu,
    is_ours,
    load_docs,
    memory,
    pod_specs,
)


def workloads(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(f"{d['kind']}/{d['metadata']['name']}", d, s) for d, s in pod_specs(docs)]


def effective(spec: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A securityContext field as the kubelet resolves it: container first, then pod."""
    csc = container.get("securityContext", {})
    if key in csc:
        return csc[key]
    return spec.get("securityContext", {}).get(key)


def violations(spec: dict[str, Any], *, ours: bool) -> list[str]:
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(field)
    for vol in spec.get("volumes", []):
        if "hostPath" in vol:
            problems.append(f"hostPath volume {vol['name']}")
    if ours and spec.get("automountServiceAccountToken") is not False:
        problems.append("service account token mounted")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        name = c["name"]
        sc = c.get("securityContext", {})
        if effective(spec, c, "runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot")
        if effective(spec, c, "runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        if (effective(spec, c, "seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccomp not RuntimeDefault")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities not dropped")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{name}: capabilities added")
        if ours and sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem writable")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    problems.append(f"{name}: no {kind}.{r}")
        image = c["image"]
        if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
            problems.append(f"{name}: image {image} not pinned")
    return problems


@pytest.mark.parametrize("values", ["default", "gitops", "minio"])
def test_every_pod_meets_the_security_policy(
    values: str,
    renderer: Renderer,
    default_docs: list[dict[str, Any]],
    gitops_docs: list[dict[str, Any]],
) -> None:
    if values == "minio":
        docs = load_docs(renderer.render(sets=("objectStore.server=minio",)))
    else:
        docs = default_docs if values == "default" else gitops_docs
    found = {}
    pods = workloads(docs)
    assert len(pods) >= 6
    for name, doc, spec in pods:
        problems = violations(spec, ours=is_ours(doc))
        if problems:
            found[name] = problems
    assert found == {}


def test_limits_are_not_below_requests(default_docs: list[dict[str, Any]]) -> None:
    for name, _, spec in workloads(default_docs):
        for c in spec["containers"]:
            req, lim = c["resources"]["requests"], c["resources"]["limits"]
            assert cpu(req["cpu"]) <= cpu(lim["cpu"]), name
            assert memory(req["memory"]) <= memory(lim["memory"]), name


def test_services_are_cluster_ip_only(default_docs: list[dict[str, Any]]) -> None:
    services = [d for d in default_docs if d["kind"] == "Service"]
    assert services
    for svc in services:
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
        assert "externalIPs" not in svc["spec"]
        for port in svc["spec"]["ports"]:
            assert "nodePort" not in port


def test_no_ingress_or_host_ports(default_docs: list[dict[str, Any]]) -> None:
    assert [d for d in default_docs if d["kind"] == "Ingress"] == []
    for name, _, spec in workloads(default_docs):
        for c in spec["containers"]:
            for port in c.get("ports", []):
                assert "hostPort" not in port, name


@pytest.mark.parametrize(("server", "s3_port"), [("seaweedfs", 8333), ("minio", 9000)])
def test_network_policies_default_deny_and_client_labels(
    renderer: Renderer, default_docs: list[dict[str, Any]], server: str, s3_port: int
) -> None:
    docs = default_docs
    if server != "seaweedfs":
        docs = load_docs(renderer.render(sets=(f"objectStore.server={server}",)))
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    deny = policies["lakehouse-default-deny"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    # Each server admits only its opted-in clients, on its own port.
    for component, label, port in [
        (server, "lakehouse/object-store-client", s3_port),
        ("postgres", "lakehouse/postgres-client", 5432),
        ("mlflow", "lakehouse/mlflow-client", 5000),
    ]:
        ingress = policies[f"lakehouse-{component}-ingress"]["ingress"]
        assert ingress == [
            {
                "from": [{"podSelector": {"matchLabels": {label: "true"}}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        ]
    # The pods of ours that use a server carry the matching client label.
    labels = {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"]["template"][
            "metadata"
        ]["labels"]
        for doc, _ in pod_specs(docs)
        if is_ours(doc)
    }
    assert labels["mlflow"]["lakehouse/object-store-client"] == "true"
    assert labels["mlflow"]["lakehouse/postgres-client"] == "true"
    assert labels["object-store-buckets"]["lakehouse/object-store-client"] == "true"
    assert labels["postgres-init"]["lakehouse/postgres-client"] == "true"


def test_network_policies_switch_off(renderer: Renderer) -> None:
    docs = load_docs(renderer.render(sets=("networkPolicy.enabled=false",)))
    assert [d for d in docs if d["kind"] == "NetworkPolicy"] == []


def test_mlflow_answers_a_port_forward_on_any_local_port(
    default_docs: list[dict[str, Any]],
) -> None:
    """MLflow's host check (MLFLOW_SERVER_ALLOWED_HOSTS) answered 403 to a port-forward on a
    local port other than 5000 (seen on the kind cluster); loopback matches on any port, and no
    wildcard host (that would switch the check off)."""
    import fnmatch

    (deploy,) = [
        d
        for d in default_docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-mlflow")
    ]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    allowed = env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert "*" not in allowed
    for host in ("127.0.0.1:5000", "127.0.0.1:41485", "localhost:8081", "lakehouse-mlflow:5000"):
        assert any(fnmatch.fnmatch(host, a) for a in allowed), (host, allowed)
    assert not any(fnmatch.fnmatch("evil.example.com:5000", a) for a in allowed)
