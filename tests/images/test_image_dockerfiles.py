"""The Dockerfiles: hadolint-clean, versions from versions.env (and uv.lock), pinned bases,
non-root users matching the pods that run them, build contexts that hold what they copy."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from image_tools import (
    HADOLINT,
    HADOLINT_CONFIG,
    IMAGES_DIR,
    ROOT,
    instructions,
    lock_versions,
    normalize,
    stages,
    substitute,
)

from images.build import GO_BINARIES
from images.build_args import IMAGES, dockerfile, dockerfile_args, project_version
from lakehouse.versions import parse_versions

VERSIONS = parse_versions((ROOT / "versions.env").read_text())
# ARGs that are no version: where the jars come from (a mirror may replace Maven Central).
NOT_VERSIONS = {"MAVEN_REPOSITORY"}


def text(image: str) -> str:
    return dockerfile(image).read_text()


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--config", str(HADOLINT_CONFIG), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_image_folder_has_a_dockerfile_and_is_listed():
    folders = {p.parent.name for p in IMAGES_DIR.glob("*/Dockerfile")}
    assert folders == set(IMAGES)


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_finds_nothing(image: str):
    result = hadolint(dockerfile(image))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_config_still_reports_findings(tmp_path: Path):
    """The config must not silence the rules the Dockerfiles rely on."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3015", "DL3009", "DL3002"):
        assert rule in result.stdout


def test_hadolint_ignores_have_reasons():
    config = yaml.safe_load(HADOLINT_CONFIG.read_text()) or {}
    raw = HADOLINT_CONFIG.read_text()
    for rule in config.get("ignored", []):
        # each ignored rule is named again in a comment that says why
        assert re.search(rf"#.*{rule}\b", raw), f"{rule} is ignored without a reason"


@pytest.mark.parametrize("image", IMAGES)
def test_arg_defaults_agree_with_versions_env(image: str):
    declared = dockerfile_args(text(image))
    assert declared, "no ARG: versions would be hard-coded"
    for name, default in declared.items():
        assert default is not None, f"ARG {name} has no default"
        if name in VERSIONS:
            assert default == VERSIONS[name], f"ARG {name}={default}, versions.env: {name}="
        elif name == "PROJECT_VERSION":
            assert default == project_version()
        else:
            assert name in NOT_VERSIONS, f"ARG {name} is neither in versions.env nor known"


@pytest.mark.parametrize("image", IMAGES)
def test_versions_are_never_literal_in_from_or_installs(image: str):
    """Versions reach FROM and package pins only through ARGs (so only versions.env sets them)."""
    for instruction in instructions(text(image)):
        if instruction.keyword == "FROM":
            literal = re.sub(r"\$\{\w+\}", "", instruction.arguments.split()[0])
            assert not re.search(r"\d", literal), instruction.arguments
        if instruction.keyword == "RUN":
            assert not re.search(r"==\s*\d", instruction.arguments), instruction.arguments


@pytest.mark.parametrize("image", IMAGES)
def test_base_images_are_pinned(image: str):
    content = text(image)
    args = dockerfile_args(content)
    names: set[str] = set()
    for stage in stages(content)[1:]:
        words = stage[0].arguments.split()
        reference = substitute(words[0], args)
        if reference not in names:
            repository, _, tag = reference.rpartition(":")
            assert repository, reference
            assert tag not in ("", "latest"), reference
            assert re.search(r"\d", tag), f"{reference}: tag names no version"
        if len(words) == 3 and words[1].upper() == "AS":
            names.add(words[2])


def chart_uid(template: str) -> str:
    text = (ROOT / "charts/lakehouse/templates" / template).read_text()
    return re.search(r'podSecurityContext" \(dict "uid" (\d+)\)', text)[1]


def pod_uids() -> dict[str, str]:
    """The uid each image runs as in the cluster, read from the manifests that run it."""
    spark_app = (ROOT / "dags/templates/spark_application.yaml").read_text()
    stage_pod = (ROOT / "dags/templates/stage_pod.yaml").read_text()
    spark = re.search(r'"runAsUser": (\d+)', spark_app)[1]
    return {
        "spark": spark,
        "python": re.search(r"runAsUser: (\d+)", stage_pod)[1],
        "mlflow": chart_uid("mlflow/deployment.yaml"),
        "airflow": chart_uid("airflow/api-server.yaml"),
        "postgres": chart_uid("postgres/statefulset.yaml"),
        "seaweedfs": chart_uid("seaweedfs/statefulset.yaml"),
        # The upstream operator chart runs its controller as the spark image's user.
        "spark-operator": spark,
        "jupyter": spark,  # the spark image's user
        "flux": deploy_uid("flux/system/source-controller.yaml"),
        "git-server": deploy_uid("flux/git-server/git-server.yaml"),
    }


def deploy_uid(relative: str) -> str:
    """runAsUser of the first Deployment of a deploy/ manifest."""
    docs = yaml.safe_load_all((ROOT / "deploy" / relative).read_text())
    (deployment, *_) = [d for d in docs if d and d["kind"] == "Deployment"]
    return str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"])


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_ends_as_the_pods_non_root_uid(image: str):
    final = stages(text(image))[-1]
    users = [i.arguments for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: a numeric uid lets Kubernetes verify runAsNonRoot"
    assert uid != "0"
    assert uid == pod_uids()[image]


def context_sources(content: str) -> list[str]:
    """Paths a Dockerfile takes from the build context (COPY without --from, bind mounts)."""
    sources = []
    for instruction in instructions(content):
        words = instruction.arguments.split()
        if instruction.keyword == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[:-1] if not w.startswith("--")]
        if instruction.keyword == "RUN":
            for mount in re.findall(r"--mount=(\S+)", instruction.arguments):
                options = dict(o.partition("=")[::2] for o in mount.split(","))
                if options.get("type") == "bind" and "from" not in options:
                    sources.append(options["source"])
    return sources


def included(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; ``!`` re-includes."""
    keep = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, glob) or path.startswith(glob + "/"):
            keep = negated
    return keep


@pytest.mark.parametrize("image", IMAGES)
def test_dockerignore_is_an_allow_list_holding_every_copied_path(image: str):
    ignore = dockerfile(image).with_name("Dockerfile.dockerignore")
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow"
    sources = context_sources(text(image))
    assert sources
    for source in sources:
        if source.startswith("images/.build/"):
            # Staged by the builder from the Go module proxy (images/gobuild.sh), not committed.
            assert image in GO_BINARIES, f"{source}: {image} stages no Go binary"
            assert ".build/" in (ROOT / ".gitignore").read_text()
        else:
            assert (ROOT / source).exists(), f"{source} is not in the repository"
        assert included(source, patterns), f"{source} is excluded from the build context"
    for secret_or_state in (".venv", ".git", ".lakehouse", ".tools", "tests", "charts"):
        assert not included(secret_or_state, patterns)


def test_spark_image_holds_the_sources_where_the_dags_point():
    sys.path.insert(0, str(ROOT / "dags"))
    try:
        from lakehouse_dags.deployment import APP_ROOT
    finally:
        sys.path.pop(0)
    final = stages(text("spark"))[-1]
    copies = {tuple(i.arguments.split()[-2:]) for i in final if i.keyword == "COPY"}
    assert ("spark_apps", f"{APP_ROOT}/spark_apps") in copies
    assert ("lakehouse", f"{APP_ROOT}/lakehouse") in copies
    # lakehouse.versions reads versions.env beside the package
    assert ("versions.env", f"{APP_ROOT}/versions.env") in copies
    env = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert f"PYTHONPATH={APP_ROOT}" in env


@pytest.mark.parametrize("image", ["python", "airflow"])
def test_images_with_the_project_keep_versions_env_beside_it(image: str):
    copies = [i.arguments.split() for i in instructions(text(image)) if i.keyword == "COPY"]
    destinations = {(src, words[-1]) for words in copies for src in words[:-1]}
    assert any(src == "versions.env" for src, _ in destinations)
    assert any(
        src == "lakehouse" and dst == "/opt/lakehouse/lakehouse" for src, dst in destinations
    )
    versions_dst = next(dst for src, dst in destinations if src == "versions.env")
    assert versions_dst.rstrip("/") in ("/opt/lakehouse", "/opt/lakehouse/versions.env")


def test_airflow_versions_agree_with_uv_lock_and_pyproject():
    lock = lock_versions()
    assert lock["apache-airflow"] == {VERSIONS["AIRFLOW_VERSION"]}
    assert lock["apache-airflow-providers-cncf-kubernetes"] == {
        VERSIONS["AIRFLOW_CNCF_KUBERNETES_VERSION"]
    }


# The python3 of each Debian suite the base may name.
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def test_python_versions_agree():
    assert DEBIAN_PYTHON[VERSIONS["DEBIAN_RELEASE"]] == VERSIONS["PYTHON_VERSION"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["required-version"] == "==" + VERSIONS["UV_VERSION"]


def requirement_pins(path: Path) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            pins.setdefault(normalize(match[1]), set()).add(match[2])
    return pins


def test_jupyter_requirements_pin_jupyterlab_and_agree_with_uv_lock():
    path = IMAGES_DIR / "jupyter" / "requirements.txt"
    pins = requirement_pins(path)
    assert pins["jupyterlab"] == {VERSIONS["JUPYTERLAB_VERSION"]}
    lock = {normalize(name): versions for name, versions in lock_versions().items()}
    shared = {name for name in pins if name in lock}
    assert {"numpy", "pandas", "pyarrow"} <= shared
    for name in shared:
        assert pins[name] <= lock[name], f"{name}: {pins[name]} vs uv.lock {lock[name]}"
    entries = re.split(r"\n(?=[A-Za-z0-9])", path.read_text().split("\n", 2)[2])
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert "pyspark" not in pins  # the Spark image's own pyspark serves the notebooks


def cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "images", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_cli_lists_images_with_spark_before_jupyter():
    names = cli("list").split()
    assert set(names) == set(IMAGES)
    assert names.index("spark") < names.index("jupyter")


def test_cli_tags_are_the_ones_the_dags_run():
    version = importlib.metadata.version("iot-lakehouse")
    assert cli("tag", "spark") == f"lakehouse/spark:{version}"
    assert cli("tag", "python") == f"lakehouse/python:{version}"


@pytest.mark.parametrize("image", IMAGES)
def test_cli_build_args_give_every_version_arg_its_dockerfile_default(image: str):
    flags = cli("build-args", image).split()
    assert flags[::2] == ["--build-arg"] * (len(flags) // 2)
    given = dict(flag.split("=", 1) for flag in flags[1::2])
    declared = dockerfile_args(text(image))
    expected = {k: v for k, v in declared.items() if k not in NOT_VERSIONS}
    assert given == expected


def test_cli_rejects_an_unknown_image():
    result = subprocess.run(
        [sys.executable, "-m", "images", "tag", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_every_image_starts_from_the_one_base(image: str):
    """FROM ${BASE_IMAGE} (Debian's slim image by digest, or the debootstrap equivalent), or
    FROM the project's spark image, which does; no other upstream image, no frontend fetch."""
    content = text(image)
    assert not re.search(r"^#\s*syntax=", content, re.M), "BuildKit would fetch a frontend image"
    names: set[str] = set()
    for stage in stages(content)[1:]:
        words = stage[0].arguments.split()
        if words[0] not in names:
            assert words[0] in ("${BASE_IMAGE}", "lakehouse/spark:${PROJECT_VERSION}"), words
        if len(words) == 3:
            names.add(words[2])


def test_base_image_is_pinned_by_digest():
    assert re.fullmatch(r"debian:[a-z]+-slim@sha256:[0-9a-f]{64}", VERSIONS["BASE_IMAGE"])
    assert VERSIONS["BASE_IMAGE"].startswith(f"debian:{VERSIONS['DEBIAN_RELEASE']}-")


@pytest.mark.parametrize("image", IMAGES)
def test_downloads_see_the_ca_bundle_only_through_the_build_secret(image: str):
    """Every RUN that mounts the ca_bundle secret hands it over with images/lib/with-ca.sh, and
    no instruction copies a bundle into the image."""
    for instruction in instructions(text(image)):
        words = instruction.arguments
        if instruction.keyword == "RUN" and "id=ca_bundle" in words:
            assert "/tmp/lib/with-ca.sh" in words
        if instruction.keyword in ("COPY", "ADD"):
            assert not re.search(r"\.(pem|crt)\b|ca-certificates|ca_bundle", words), words
