"""The values table in the chart README is generated from values.yaml and documents every key."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from manifest_tools import CHART_SRC, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML missing: add it to the dev extra")

# Blocks passed unchanged to an upstream chart: its README documents the keys we do not set.
UPSTREAM_BLOCKS = ("spark-operator",)


def _load_generator() -> ModuleType:
    path = ROOT / "charts" / "scripts" / "values_table.py"
    spec = importlib.util.spec_from_file_location("values_table", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vt = _load_generator()
VALUES_TEXT = (CHART_SRC / "values.yaml").read_text()


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path to a scalar, a list or an empty mapping."""
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in leaf_paths(v, (*prefix, str(k)))]
    return [prefix]


def test_readme_table_is_the_generated_one() -> None:
    readme = (CHART_SRC / "README.md").read_text()
    generated = vt.values_table(VALUES_TEXT)
    assert generated.count("\n") >= 60
    assert vt.replace_between_markers(readme, generated) == readme, "run `make chart-docs`"


def test_every_key_we_own_has_a_description() -> None:
    rows = vt.rows(yaml.safe_load(VALUES_TEXT), vt.descriptions(VALUES_TEXT))
    missing = [r.key for r in rows if not r.description and not r.key.startswith(UPSTREAM_BLOCKS)]
    assert missing == [], "add a `# --` comment above each key in values.yaml"


def test_every_leaf_of_values_yaml_is_in_the_table() -> None:
    rows = vt.rows(yaml.safe_load(VALUES_TEXT), vt.descriptions(VALUES_TEXT))
    # Every leaf is exactly one row or lies inside exactly one (a mapping documented whole).
    for path in leaf_paths(yaml.safe_load(VALUES_TEXT)):
        leaf = ".".join(path)
        assert sum(leaf == r.key or leaf.startswith(r.key + ".") for r in rows) == 1, leaf


SAMPLE = """\
# A file comment, not a description.

# -- Deploy it.
enabled: true
# Section comment without a description.
server:
  # -- Image tag: pinned,
  # never latest.
  tag: "1.2"

  # -- Lost: a blank line separates it from its key.

  port: 9000
  # -- Requests and limits, documented as one value.
  resources:
    requests: {cpu: 10m}
  env:
    - name: A
      value: b
  ratio: 0.5
  # -- Pipes | are escaped.
  extra: {}
"""


def test_descriptions_follow_their_keys() -> None:
    assert vt.descriptions(SAMPLE) == {
        ("enabled",): "Deploy it.",
        ("server", "tag"): "Image tag: pinned, never latest.",
        ("server", "resources"): "Requests and limits, documented as one value.",
        ("server", "extra"): "Pipes | are escaped.",
    }


def test_rows_descend_into_sections_and_keep_documented_mappings_whole() -> None:
    rows = vt.rows(yaml.safe_load(SAMPLE), vt.descriptions(SAMPLE))
    assert [tuple(r) for r in rows] == [
        ("enabled", "bool", "true", "Deploy it."),
        ("server.tag", "string", '"1.2"', "Image tag: pinned, never latest."),
        ("server.port", "int", "9000", ""),
        ("server.resources", "object", '{"requests": {"cpu": "10m"}}',
         "Requests and limits, documented as one value."),
        ("server.env", "list", '[{"name": "A", "value": "b"}]', ""),
        ("server.ratio", "float", "0.5", ""),
        ("server.extra", "object", "{}", "Pipes | are escaped."),
    ]  # fmt: skip


def test_table_is_markdown_with_escaped_pipes() -> None:
    text = vt.values_table("# -- a | b\nkey: x\n")
    assert text.splitlines() == [
        "| key | type | default | description |",
        "|---|---|---|---|",
        '| `key` | string | `"x"` | a \\| b |',
    ]


def test_markers_are_required_once() -> None:
    doc = f"intro\n{vt.BEGIN}\nold\n{vt.END}\noutro\n"
    assert vt.replace_between_markers(doc, "new") == f"intro\n{vt.BEGIN}\nnew\n{vt.END}\noutro\n"
    with pytest.raises(ValueError, match="exactly one"):
        vt.replace_between_markers("no markers", "new")


def test_check_mode_fails_on_a_stale_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{vt.BEGIN}\n| stale |\n{vt.END}\n")
    monkeypatch.setattr(vt, "README", readme)
    assert vt.main(["--check"]) == 1
    assert vt.main([]) == 0
    assert vt.main(["--check"]) == 0
    assert readme.read_text().startswith(f"{vt.BEGIN}\n| key | type | default | description |")
