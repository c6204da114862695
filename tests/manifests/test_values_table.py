"""The chart README is what helm-docs makes of README.md.gotmpl and values.yaml, and its values
table documents every key of ours."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from manifest_tools import CHART_SRC, CHART_TOOLS, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML missing: add it to the dev extra")

# Blocks passed unchanged to an upstream chart: its README documents the keys we do not set.
UPSTREAM_BLOCKS = ("spark-operator",)
HELM_DOCS = ROOT / ".tools" / "bin" / "helm-docs"


@pytest.fixture(scope="module")
def helm_docs() -> Path:
    proc = subprocess.run(
        ["bash", str(CHART_TOOLS), "helm-docs"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"building helm-docs failed:\n{proc.stdout}{proc.stderr}"
    return HELM_DOCS


def generated_readme(helm_docs: Path, chart: Path) -> str:
    proc = subprocess.run(
        [str(helm_docs), "--chart-search-root", str(chart), "--sort-values-order", "file",
         "--log-level", "warning", "--dry-run"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout


def table_rows(readme: str) -> list[list[str]]:
    """The cells of each row of the values table (the one headed `| Key | Type |`)."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Key | Type |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path to a scalar, a list or an empty mapping."""
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in leaf_paths(v, (*prefix, str(k)))]
    return [prefix]


def test_readme_is_the_generated_one(helm_docs: Path) -> None:
    # The dry run prints what `make chart-docs` would write.
    assert generated_readme(helm_docs, CHART_SRC) == (CHART_SRC / "README.md").read_text(), (
        "charts/lakehouse/README.md is stale or was edited by hand: edit README.md.gotmpl "
        "or values.yaml, then run `make chart-docs`"
    )


def test_every_key_we_own_has_a_description() -> None:
    rows = table_rows((CHART_SRC / "README.md").read_text())
    assert len(rows) >= 60
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    missing = [key for key, _, _, text in rows if not text and not key.startswith(UPSTREAM_BLOCKS)]
    assert missing == [], "add a `# --` comment above each key in values.yaml"


def test_every_leaf_of_values_yaml_is_in_the_table() -> None:
    keys = [r[0] for r in table_rows((CHART_SRC / "README.md").read_text())]
    # Every leaf is exactly one row or lies inside exactly one (a mapping documented whole).
    for path in leaf_paths(yaml.safe_load((CHART_SRC / "values.yaml").read_text())):
        leaf = ".".join(path)
        assert sum(leaf == k or leaf.startswith(k + ".") for k in keys) == 1, leaf


SAMPLE = """\
# A file comment, not a description.

# -- Deploy it.
enabled: true
server:
  # -- Image tag: pinned,
  # never latest.
  tag: "1.2"
  # -- Requests and limits, documented as one value.
  resources:
    requests: {cpu: 10m}
  port: 9000
"""


def test_helm_docs_reads_our_comment_conventions(helm_docs: Path, tmp_path: Path) -> None:
    """What values.yaml relies on, on the pinned helm-docs: a `# --` description continues on
    the comment lines below it, a documented mapping is one row, file order is kept."""
    chart = tmp_path / "sample"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: sample\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(SAMPLE)
    (chart / "README.md.gotmpl").write_text('{{ template "chart.valuesTable" . }}\n')
    assert table_rows(generated_readme(helm_docs, chart)) == [
        ["enabled", "bool", "`true`", "Deploy it."],
        ["server.tag", "string", '`"1.2"`', "Image tag: pinned, never latest."],
        ["server.resources", "object", '`{"requests":{"cpu":"10m"}}`',
         "Requests and limits, documented as one value."],
        ["server.port", "int", "`9000`", ""],
    ]  # fmt: skip
