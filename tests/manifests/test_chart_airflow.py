"""The Airflow component of the chart: objects valid and complete in the default, kind and GitOps
renders; the worker pod template; secrets only by reference; least-privilege RBAC; the
configuration keys Airflow 3.2 really has; values schema and invalid combinations."""

from __future__ import annotations

import base64
import configparser
import importlib.util
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_tools import (
    CHART_BUILD,
    CHART_SRC,
    GITOPS_VALUES,
    NAMESPACE,
    ROOT,
    Renderer,
    dag_render_env,
    footprint,
    invalid_objects,
    is_ours,
    load_docs,
    pod_specs,
)
from test_chart_policy import violations

KIND_VALUES = CHART_SRC / "values-kind.yaml"
RENDERS = {"default": (), "kind": (KIND_VALUES,), "gitops": (GITOPS_VALUES,)}
# Every optional Airflow piece on (and the api-server without Kubernetes API access).
FULL_SETS = (
    "airflow.triggerer.enabled=true",
    "airflow.gitSync.enabled=true",
    "airflow.gitSync.repo=https://git.example.com/lakehouse.git",
    "airflow.gitSync.credentialsSecret=git-credentials",
    "airflow.apiServer.podLogReading=false",
)
API_SERVER = "lakehouse-airflow-api-server"
SCHEDULER = "lakehouse-airflow-scheduler"
WORKER = "lakehouse-airflow-worker"
AIRFLOW_SECRET_KEYS = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_ADMIN_PASSWORD",
}


@pytest.fixture(scope="module")
def renders(renderer: Renderer, default_docs: list[dict[str, Any]]) -> dict[str, list[dict]]:
    out = {name: load_docs(renderer.render(values)) for name, values in RENDERS.items() if values}
    out["default"] = default_docs
    return out


def airflow_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["metadata"]
        .get("labels", {})
        .get("app.kubernetes.io/component", "")
        .startswith("airflow")
        or d["metadata"]["name"].startswith("lakehouse-airflow")
    ]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def worker_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cm = find(docs, "ConfigMap", "lakehouse-airflow-pod-template")
    return yaml.safe_load(cm["data"]["pod_template.yaml"])


def airflow_cfg(docs: list[dict[str, Any]]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(find(docs, "ConfigMap", "lakehouse-airflow-config")["data"]["airflow.cfg"])
    return parser


def airflow_pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Airflow pod, the worker pod template included."""
    pods = [(d["metadata"]["name"], s) for d, s in pod_specs(airflow_objects(docs))]
    return [*pods, ("worker-pod-template", worker_pod(docs)["spec"])]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# ------------------------------------------------------------------ objects and schemas


@pytest.mark.parametrize("values", list(RENDERS))
def test_every_airflow_component_is_rendered(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    for name in (API_SERVER, SCHEDULER, "lakehouse-airflow-dag-processor"):
        find(docs, "Deployment", name)
    assert [d for d in docs if d["metadata"]["name"] == "lakehouse-airflow-triggerer"] == []
    svc = find(docs, "Service", API_SERVER)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    jobs = [d for d in docs if d["kind"] == "Job" and "airflow-migrate" in d["metadata"]["name"]]
    (job,) = jobs
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "airflow", "db", "migrate",
    ]  # fmt: skip
    # The migration is a plain Job, never a Helm hook (see migrate-job.yaml).
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})


@pytest.mark.parametrize("variant", ["kind", "gitops", "full"])
def test_renders_validate_strictly(
    renderer: Renderer,
    renders: dict[str, list[dict]],
    versions: dict[str, str],
    variant: str,
) -> None:
    """Every object of the kind and GitOps renders, and of a render with every optional
    Airflow piece on, against the Kubernetes schemas (the default render: test_chart_render)."""
    pytest.importorskip("kubernetes_validate")
    docs = renders[variant] if variant != "full" else load_docs(renderer.render(sets=FULL_SETS))
    names = {d["metadata"]["name"] for d in docs}
    if variant == "full":
        assert {"lakehouse-airflow-triggerer", "lakehouse-git-clients"} <= names
    errors = invalid_objects(docs, versions["KUBERNETES_VERSION"])
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("variant", ["default", "full"])
def test_worker_pod_template_is_a_valid_secure_pod(
    renderer: Renderer,
    renders: dict[str, list[dict]],
    versions: dict[str, str],
    variant: str,
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = (
        renders["default"] if variant == "default" else load_docs(renderer.render(sets=FULL_SETS))
    )
    pod = worker_pod(docs)
    kubernetes_validate.validate(pod, versions["KUBERNETES_VERSION"], strict=True)
    spec = pod["spec"]
    assert violations(spec, ours=True) == []
    # The executor runs the task in the container named "base", as the worker ServiceAccount.
    assert [c["name"] for c in spec["containers"]] == ["base"]
    assert spec["serviceAccountName"] == WORKER
    scheduler = find(docs, "Deployment", SCHEDULER)["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == scheduler["containers"][0]["image"]
    # The scheduler reads the template from the path airflow.cfg names.
    cfg = airflow_cfg(docs)
    mount = {m["name"]: m["mountPath"] for m in scheduler["containers"][0]["volumeMounts"]}
    path = Path(cfg["kubernetes_executor"]["pod_template_file"])
    assert str(path.parent) == mount["pod-template"]
    volume = {v["name"]: v for v in scheduler["volumes"]}["pod-template"]
    assert volume["configMap"]["name"] == "lakehouse-airflow-pod-template"
    assert path.name == "pod_template.yaml"


@pytest.mark.parametrize("values", list(RENDERS))
def test_every_airflow_pod_meets_the_security_policy(
    renders: dict[str, list[dict]], values: str
) -> None:
    found = {}
    for name, spec in airflow_pods(renders[values]):
        for c in containers(spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
        if spec["securityContext"]["runAsUser"] != 50000:
            found[name] = ["not the airflow uid 50000"]
        if problems := violations(spec, ours=True):
            found[name] = problems
    assert found == {}


# ------------------------------------------------------------------ secrets by reference only

SECRETISH = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|ACCESS_KEY")


@pytest.mark.parametrize("values", list(RENDERS))
def test_no_secret_value_in_env_or_config(renders: dict[str, list[dict]], values: str) -> None:
    docs = renders[values]
    secrets = [
        base64.b64decode(v).decode()
        for d in docs
        if d["kind"] == "Secret"
        for k, v in d.get("data", {}).items()
        if not k.endswith("_USER")
    ]
    if values != "gitops":
        assert len(secrets) >= 10
    for name, spec in airflow_pods(docs):
        for c in containers(spec):
            for env in c.get("env", []):
                where = f"{name}/{c['name']}/{env['name']}"
                if SECRETISH.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), where
                    assert "value" not in env, where
                literal = env.get("value", "")
                assert not any(s in literal for s in secrets), where
    # No ConfigMap holds a secret value: airflow.cfg, the settings, the pipeline contract...
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        text = json.dumps(cm.get("data", {}))
        assert not any(s in text for s in secrets), cm["metadata"]["name"]
    # The metadata-database URL carries no user or password (libpq reads PGUSER/PGPASSWORD).
    url = airflow_cfg(docs)["database"]["sql_alchemy_conn"]
    assert url == "postgresql+psycopg2://lakehouse-postgres:5432/airflow"


def test_generated_airflow_secrets_work(renderer: Renderer) -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    first, second = (
        find(load_docs(renderer.render()), "Secret", "lakehouse-credentials")["data"]
        for _ in range(2)
    )
    assert set(first) >= AIRFLOW_SECRET_KEYS
    key = base64.b64decode(first["AIRFLOW_FERNET_KEY"])
    token = fernet.Fernet(key).encrypt(b"connection password")
    assert fernet.Fernet(key).decrypt(token) == b"connection password"
    for name in AIRFLOW_SECRET_KEYS:
        assert first[name] != second[name], f"{name} is not generated"
        assert len(base64.b64decode(first[name])) >= 20, name


def test_gitops_airflow_secrets_come_from_the_existing_secret(
    renders: dict[str, list[dict]],
) -> None:
    docs = renders["gitops"]
    assert [d for d in docs if d["kind"] == "Secret"] == []
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for _, spec in airflow_pods(docs)
        for c in containers(spec)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {name for name, _ in refs} == {"lakehouse-credentials"}
    assert {key for _, key in refs} == AIRFLOW_SECRET_KEYS | {
        "AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    }  # fmt: skip
    # values-gitops.yaml documents every key the existing Secret must hold.
    documented = GITOPS_VALUES.read_text()
    for _, key in refs:
        assert key in documented, key


def test_secrets_reach_only_the_components_that_need_them(
    renders: dict[str, list[dict]],
) -> None:
    docs = renders["default"]

    def secret_keys(spec: dict[str, Any]) -> set[str]:
        return {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in spec["containers"][0].get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    db = {"AIRFLOW_DB_USER", "AIRFLOW_DB_PASSWORD"}
    s3 = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    deployments = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("lakehouse-airflow")
    }
    assert secret_keys(deployments[API_SERVER]) == db | s3 | {
        "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
    }  # fmt: skip
    assert secret_keys(deployments[SCHEDULER]) == db | {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"}
    assert secret_keys(deployments["lakehouse-airflow-dag-processor"]) == db | s3 | {
        "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
    }  # fmt: skip
    # Worker pods: no database, no Fernet key, no JWT secret; only the S3 pair for their logs.
    assert secret_keys(worker_pod(docs)["spec"]) == s3


# ------------------------------------------------------------------ configuration


def _airflow_package() -> Path:
    spec = importlib.util.find_spec("airflow")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("apache-airflow is not installed (the airflow extra of uv.lock)")
    return Path(next(iter(spec.submodule_search_locations)))


def airflow_options() -> dict[str, set[str]]:
    """Every [section] option Airflow core and the cncf-kubernetes provider define."""
    package = _airflow_package()
    core = yaml.safe_load((package / "config_templates" / "config.yml").read_text())
    options = {section: set(body["options"]) for section, body in core.items()}
    info = package / "providers" / "cncf" / "kubernetes" / "get_provider_info.py"
    spec = importlib.util.spec_from_file_location("cncf_provider_info", info)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for section, body in module.get_provider_info()["config"].items():
        options.setdefault(section, set()).update(body["options"])
    return options


def test_airflow_cfg_and_env_keys_exist_in_airflow(renders: dict[str, list[dict]]) -> None:
    options = airflow_options()
    docs = renders["default"]
    cfg = airflow_cfg(docs)
    for section in cfg.sections():
        for key in cfg[section]:
            assert key in options.get(section, set()), f"[{section}] {key} is not an Airflow option"
    env_names = {
        e["name"]
        for _, spec in airflow_pods(docs)
        for c in containers(spec)
        for e in c.get("env", [])
    }
    config_env = {n for n in env_names if n.startswith("AIRFLOW__")}
    assert config_env == {
        "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
    }  # fmt: skip
    for name in config_env:
        section, key = name.removeprefix("AIRFLOW__").lower().split("__")
        assert key in options[section], name
    # The auth manager class named in airflow.cfg exists in the installed Airflow.
    module = cfg["core"]["auth_manager"].rsplit(".", 1)[0]
    assert (_airflow_package().parent / (module.replace(".", "/") + ".py")).is_file()


def test_airflow_cfg_wiring(renders: dict[str, list[dict]]) -> None:
    docs = renders["default"]
    cfg = airflow_cfg(docs)
    assert cfg["core"]["executor"] == "KubernetesExecutor"
    assert cfg["core"]["simple_auth_manager_users"] == "admin:admin"
    assert cfg["core"]["dags_folder"] == "/opt/airflow/dags"
    assert cfg["core"]["load_examples"] == "False"
    # Workers reach the execution API at the api-server's Service.
    assert cfg["core"]["execution_api_server_url"] == f"http://{API_SERVER}:8080/execution/"
    assert cfg["kubernetes_executor"]["namespace"] == NAMESPACE
    assert cfg["logging"]["remote_logging"] == "True"
    assert cfg["logging"]["remote_base_log_folder"] == "s3://lakehouse-airflow-logs"
    # The scheduler's liveness probe targets the health server airflow.cfg turns on.
    scheduler = find(docs, "Deployment", SCHEDULER)["spec"]["template"]["spec"]["containers"][0]
    assert cfg["scheduler"]["enable_health_check"] == "True"
    port = {p["name"]: p["containerPort"] for p in scheduler["ports"]}["health"]
    assert str(port) == cfg["scheduler"]["scheduler_health_check_server_port"]


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion; an undefined reference would stay literal (fail here)."""

    def sub(match: re.Match[str]) -> str:
        assert match.group(1) in env, f"$({match.group(1)}) is not defined before use"
        return env[match.group(1)]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def test_remote_log_connection_resolves_from_the_settings(renders: dict[str, list[dict]]) -> None:
    docs = renders["default"]
    settings = find(docs, "ConfigMap", "lakehouse-settings")["data"]
    cfg = airflow_cfg(docs)
    conn_env = "AIRFLOW_CONN_" + cfg["logging"]["remote_log_conn_id"].upper()
    for name, spec in airflow_pods(docs):
        for c in spec["containers"]:
            env = dict(settings) if c.get("envFrom") else {}
            resolved = {}
            for e in c.get("env", []):
                if "value" in e:
                    env[e["name"]] = resolved[e["name"]] = expand(e["value"], env)
                else:
                    env[e["name"]] = "<from secret>"
            if conn_env not in resolved:
                continue
            conn = json.loads(resolved[conn_env])
            assert conn["conn_type"] == "aws", name
            assert conn["extra"] == {
                "endpoint_url": "http://lakehouse-seaweedfs:8333",
                "region_name": settings["AWS_REGION"],
            }, name
            assert "login" not in conn
            assert "password" not in conn


def test_worker_env_is_what_the_dags_expect(
    renders: dict[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's env through the DAGs' own Deployment macro names objects that exist."""
    docs = renders["default"]
    monkeypatch.syspath_prepend(str(ROOT / "dags"))
    from lakehouse_dags.deployment import Deployment

    container = worker_pod(docs)["spec"]["containers"][0]
    # The contract reaches the worker from the pipeline ConfigMap (resolved like the kubelet).
    for name, value in dag_render_env(docs).items():
        monkeypatch.setenv(name, value)
    d = Deployment()
    names = {(o["kind"], o["metadata"]["name"]) for o in docs}
    assert d.namespace == NAMESPACE
    assert ("ConfigMap", d.settings_configmap) in names
    for e in d.secret_env(["objectStore", "catalog", "mlflow"]):
        ref = e["valueFrom"]["secretKeyRef"]
        assert ref["key"] in find(docs, "Secret", ref["name"])["data"], e["name"]
    assert ("ServiceAccount", d.spark_service_account) in names
    assert d.spark_image == "lakehouse/spark:0.1.0"
    assert d.python_image == "lakehouse/python:0.1.0"
    assert container["envFrom"] == [{"configMapRef": {"name": d.settings_configmap}}]


def test_admin_password_file_is_what_the_auth_manager_reads(
    renders: dict[str, list[dict]], tmp_path: Path
) -> None:
    docs = renders["default"]
    spec = find(docs, "Deployment", API_SERVER)["spec"]["template"]["spec"]
    (init,) = [c for c in spec["initContainers"] if c["name"] == "admin-password"]
    path = airflow_cfg(docs)["core"]["simple_auth_manager_passwords_file"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts[str(Path(path).parent)] == "auth"
    assert {m["name"] for m in init["volumeMounts"]} == {"auth"}
    # Run the init container's script (python -c) with a password full of JSON metacharacters.
    script = init["command"][2].replace(path, str(tmp_path / "passwords.json"))
    password = "p\"a\\ss{w}o'rd"
    env = {"ADMIN_USER": "admin", "ADMIN_PASSWORD": password}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    assert json.loads((tmp_path / "passwords.json").read_text()) == {"admin": password}


def test_every_airflow_pod_waits_for_migrations(renders: dict[str, list[dict]]) -> None:
    docs = renders["default"]
    for name in (API_SERVER, SCHEDULER, "lakehouse-airflow-dag-processor"):
        spec = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        (wait,) = [c for c in spec["initContainers"] if c["name"] == "wait-for-migrations"]
        assert wait["command"][:3] == ["airflow", "db", "check-migrations"], name


def test_migration_job_is_renamed_only_by_a_new_image(renderer: Renderer) -> None:
    def job_name(*sets: str) -> str:
        docs = load_docs(renderer.render(sets=sets))
        (job,) = [
            d for d in docs if d["kind"] == "Job" and "airflow-migrate" in d["metadata"]["name"]
        ]
        return job["metadata"]["name"]

    first = job_name()
    assert job_name() == first
    assert job_name("airflow.parallelism=8") == first
    assert job_name("airflow.image.tag=0.2.0") != first


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


# ------------------------------------------------------------------ git-sync


def test_git_sync_serves_the_dags_when_enabled(
    renderer: Renderer, versions: dict[str, str]
) -> None:
    docs = load_docs(renderer.render(sets=FULL_SETS))
    cfg = airflow_cfg(docs)
    assert cfg["core"]["dags_folder"] == "/opt/airflow/git/repo/dags"
    expected_image = f"registry.k8s.io/git-sync/git-sync:{versions['GIT_SYNC_VERSION']}"
    processor = find(docs, "Deployment", "lakehouse-airflow-dag-processor")["spec"]["template"]
    sidecar = {c["name"]: c for c in processor["spec"]["containers"]}["git-sync"]
    assert sidecar["image"] == expected_image
    assert env_of(sidecar)["GITSYNC_ONE_TIME"]["value"] == "false"
    assert env_of(sidecar)["GITSYNC_REPO"]["value"] == "https://git.example.com/lakehouse.git"
    assert sidecar["envFrom"] == [{"secretRef": {"name": "git-credentials"}}]
    pod = worker_pod(docs)
    (clone,) = pod["spec"]["initContainers"]
    assert clone["image"] == expected_image
    assert env_of(clone)["GITSYNC_ONE_TIME"]["value"] == "true"
    # Both see the checkout where dags_folder points.
    for spec, name in ((processor["spec"], "dag-processor"), (pod["spec"], "base")):
        (main,) = [c for c in spec["containers"] if c["name"] == name]
        git_mount = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}["git"]
        assert cfg["core"]["dags_folder"].startswith(git_mount + "/")
    for labels in (processor["metadata"]["labels"], pod["metadata"]["labels"]):
        assert labels["lakehouse/git-client"] == "true"
    egress = find(docs, "NetworkPolicy", "lakehouse-git-clients")["spec"]["egress"]
    assert egress == [{"ports": [{"protocol": "TCP", "port": 443}]}]


def test_git_sync_tag_is_the_pinned_version(versions: dict[str, str]) -> None:
    values = yaml.safe_load((CHART_SRC / "values.yaml").read_text())
    assert values["airflow"]["gitSync"]["image"]["tag"] == versions["GIT_SYNC_VERSION"]


# ------------------------------------------------------------------ values API

SCHEMA_ERRORS = {
    "unknown key": ("airflow.bogus=1", "at '/airflow'", "additional properties 'bogus'"),
    "unknown nested key": ("airflow.gitSync.bogus=1", "at '/airflow/gitSync'", "'bogus'"),
    "unknown credential key": (
        "credentials.airflow.password=x",
        "at '/credentials/airflow'",
        "'password'",
    ),
    "wrong type": ("airflow.parallelism=many", "at '/airflow/parallelism'", "want integer"),
    "wrong boolean": ("airflow.enabled=maybe", "at '/airflow/enabled'", "want boolean"),
    "bad period": ("airflow.gitSync.period=soon", "at '/airflow/gitSync/period'", "soon"),
}


@pytest.mark.parametrize("case", list(SCHEMA_ERRORS))
def test_schema_rejects_bad_airflow_values(renderer: Renderer, case: str) -> None:
    setting, where, what = SCHEMA_ERRORS[case]
    proc = renderer.template(sets=(setting,))
    assert proc.returncode != 0
    assert where in proc.stderr, proc.stderr
    assert what in proc.stderr, proc.stderr


FAILURES = {
    "airflow on an external server without its role": (
        (
            "postgres.enabled=false",
            "postgres.external.host=db.example.com",
            "credentials.catalog.existingSecret=catalog",
            "mlflow.enabled=false",
        ),
        "set credentials.airflowDb.existingSecret",
    ),
    "git-sync without a repository": (
        ("airflow.gitSync.enabled=true",),
        "set airflow.gitSync.repo",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_invalid_airflow_combinations_fail(renderer: Renderer, case: str) -> None:
    sets, message = FAILURES[case]
    proc = renderer.template(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_airflow_can_be_switched_off(renderer: Renderer) -> None:
    docs = load_docs(renderer.render(sets=("airflow.enabled=false",)))
    assert airflow_objects(docs) == []
    secret = find(docs, "Secret", "lakehouse-credentials")
    assert not AIRFLOW_SECRET_KEYS & set(secret["data"])


def test_kind_values_use_loaded_images(renders: dict[str, list[dict]]) -> None:
    docs = renders["kind"]
    for name, spec in airflow_pods(docs):
        for c in containers(spec):
            if c["image"].startswith("lakehouse/"):
                assert c["imagePullPolicy"] == "Never", f"{name}/{c['name']}"
    contract = json.loads(dag_render_env(docs)["LAKEHOUSE_K8S_DEPLOYMENT"])
    assert contract["imagePullPolicy"] == "Never"


def test_footprint_reserves_one_worker_pod(renders: dict[str, list[dict]]) -> None:
    rows = footprint(renders["default"])
    # values.yaml airflow.worker.resources.requests: 100m, 256Mi.
    assert rows["airflow-worker (reserved)"] == (Fraction(1, 10), 256 * 2**20)


def test_notes_print_the_airflow_port_forward(renderer: Renderer, tmp_path: Path) -> None:
    """NOTES.txt rendered by helm (as a plain template in a copy of the chart)."""
    chart = tmp_path / "lakehouse"
    subprocess.run(["cp", "-R", str(CHART_BUILD), str(chart)], check=True)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "notes.body" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes.yaml").write_text(
        'notes: |\n  {{- include "notes.body" . | nindent 2 }}\n'
    )
    proc = renderer.run(
        "template", "lakehouse", str(chart), "--namespace", NAMESPACE,
        "--show-only", "templates/notes.yaml",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = yaml.safe_load(proc.stdout)["notes"]
    assert (
        f"kubectl -n {NAMESPACE} port-forward --address 127.0.0.1 svc/{API_SERVER} 8080:8080"
        in text
    )
    assert "AIRFLOW_ADMIN_PASSWORD of Secret lakehouse-credentials" in text


def test_helm_lint_strict_with_kind_values(renderer: Renderer) -> None:
    args = ["lint", str(CHART_BUILD), "--strict", "--namespace", NAMESPACE]
    proc = renderer.run(*args, "--values", str(KIND_VALUES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
