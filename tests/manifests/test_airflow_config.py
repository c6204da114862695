"""Airflow configuration: every airflow.cfg and env key exists in Airflow 3.2, the wiring
between them, the worker env the DAGs expect, migrations before every pod."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow_tools import (
    API_SERVER,
    SCHEDULER,
    airflow_cfg,
    airflow_pods,
    containers,
    find,
    worker_pod,
)
from manifest_tools import (
    NAMESPACE,
    ROOT,
    Renderer,
    dag_render_env,
    load_docs,
)

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
