"""Who Airflow may reach: least-privilege RBAC for the scheduler and the workers, and the
NetworkPolicies that admit the workers to the execution API."""

from __future__ import annotations

from typing import Any

import pytest
from airflow_tools import (
    API_SERVER,
    RENDERS,
    SCHEDULER,
    WORKER,
    find,
    worker_pod,
)
from manifest_tools import (
    NAMESPACE,
    Renderer,
    is_ours,
    pod_specs,
)

# ------------------------------------------------------------------ RBAC


def rules_for(docs: list[dict[str, Any]], account: str, account_ns: str) -> list[tuple[str, dict]]:
    """(namespace or "*" for cluster-wide, rule) granted to a ServiceAccount by the render."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    granted = []
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = b.get("subjects", [])
        if not any(
            s["kind"] == "ServiceAccount"
            and s["name"] == account
            and s.get("namespace") == account_ns
            for s in subjects
        ):
            continue
        ref = b["roleRef"]
        scope = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else "*"
        role_ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        granted += [(scope, rule) for rule in role.get("rules", [])]
    return granted


def allowed(
    granted: list[tuple[str, dict]], verb: str, group: str, resource: str, namespace: str
) -> bool:
    for scope, rule in granted:
        if scope not in ("*", namespace):
            continue
        if (
            {group, "*"} & set(rule.get("apiGroups", []))
            and {resource, "*"} & set(rule.get("resources", []))
            and {verb, "*"} & set(rule.get("verbs", []))
        ):
            return True
    return False


ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


@pytest.mark.parametrize("values", list(RENDERS))
def test_worker_account_is_least_privilege(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    granted = rules_for(docs, WORKER, NAMESPACE)
    assert granted, "the worker ServiceAccount is bound to nothing"
    # Only namespaced Roles in the jobs namespace: no ClusterRole, nothing cluster-wide.
    assert {scope for scope, _ in granted} == {NAMESPACE}
    for verb in ALL_VERBS:
        for ns in (NAMESPACE, "kube-system", "default"):
            assert not allowed(granted, verb, "", "secrets", ns), (verb, ns)
            assert not allowed(granted, verb, "", "configmaps", ns), (verb, ns)
    for verb in ("create", "get", "list", "watch", "delete"):
        assert allowed(granted, verb, "sparkoperator.k8s.io", "sparkapplications", NAMESPACE)
        assert allowed(granted, verb, "", "pods", NAMESPACE)
        assert not allowed(granted, verb, "sparkoperator.k8s.io", "sparkapplications", "default")
        assert not allowed(granted, verb, "", "pods", "kube-system")
    assert allowed(granted, "get", "", "pods/log", NAMESPACE)
    assert not allowed(granted, "create", "", "pods/exec", NAMESPACE)
    assert not allowed(granted, "create", "rbac.authorization.k8s.io", "rolebindings", NAMESPACE)
    for _, rule in granted:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert set(rule["resources"]) <= {
            "sparkapplications", "sparkapplications/status", "pods", "pods/log", "events",
        }  # fmt: skip


@pytest.mark.parametrize("values", list(RENDERS))
def test_scheduler_manages_worker_pods_only(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    granted = rules_for(docs, SCHEDULER, NAMESPACE)
    assert {scope for scope, _ in granted} == {NAMESPACE}
    for verb in ("create", "get", "list", "watch", "delete"):
        assert allowed(granted, verb, "", "pods", NAMESPACE)
        assert not allowed(granted, verb, "", "pods", "default")
    for verb in ALL_VERBS:
        assert not allowed(granted, verb, "sparkoperator.k8s.io", "sparkapplications", NAMESPACE)
        assert not allowed(granted, verb, "", "secrets", NAMESPACE)
    assert {r for _, rule in granted for r in rule["resources"]} == {"pods", "pods/log"}
    api = rules_for(docs, API_SERVER, NAMESPACE)
    assert not allowed(api, "create", "", "pods", NAMESPACE)
    assert allowed(api, "get", "", "pods/log", NAMESPACE)


def test_a_jobs_namespace_other_than_the_release_namespace_is_refused(
    renderer: Renderer,
) -> None:
    # The stage pods would reference a settings ConfigMap and Secret their namespace lacks.
    proc = renderer.template(sets=("spark-operator.spark.jobNamespaces={spark-jobs}",))
    assert proc.returncode != 0
    assert 'jobNamespaces[0] is "spark-jobs" but the release is installed into "lakehouse"' in (
        proc.stderr
    )
    assert "spark-operator.spark.jobNamespaces={lakehouse}" in proc.stderr


# ------------------------------------------------------------------ network


def test_network_policies_admit_the_workers_to_the_execution_api(
    renders: dict[str, list[dict]],
) -> None:
    docs = renders["default"]
    policy = find(docs, "NetworkPolicy", "lakehouse-airflow-api-server-ingress")
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"lakehouse/airflow-api-client": "true"}}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    labels = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["metadata"][
            "labels"
        ]
        for d, _ in pod_specs(docs)
        if is_ours(d)
    }
    labels["airflow-worker"] = worker_pod(docs)["metadata"]["labels"]

    def clients(component: str) -> set[str]:
        return {
            k.removeprefix("lakehouse/").removesuffix("-client")
            for k, v in labels[component].items()
            if k.startswith("lakehouse/") and v == "true"
        }

    assert clients("airflow-worker") == {"object-store", "kube-api", "airflow-api"}
    assert clients("airflow-scheduler") == {"postgres", "kube-api"}
    assert clients("airflow-api-server") == {"postgres", "object-store", "kube-api"}
    assert clients("airflow-dag-processor") == {"postgres", "object-store"}
    assert clients("airflow-migrate") == {"postgres"}
