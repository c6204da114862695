"""Each task's command maps to an entrypoint of this repository that accepts the interval.

The command is taken from what the task would submit (the SparkApplication's main file and
arguments, the pod's command and args), resolved to a module file, and its ``main(argv)`` is
called with exactly those arguments; the module's own ``parse_interval`` is intercepted right
after parsing, so no stage runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dag_tools import ROOT, SAMPLE_RUN_ID
from lakehouse_dags.deployment import APP_ROOT


class Parsed(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, namespace: Any) -> None:
        self.namespace = namespace


def module_file(module: str) -> Path:
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    assert path.is_file(), f"no entrypoint file for {module} at {path}"
    return path


def load(module: str) -> ModuleType:
    path = module_file(module)
    if path.is_relative_to(ROOT / module.split(".")[0]):
        return importlib.import_module(module)
    spec = importlib.util.spec_from_file_location(f"proposed_{module.replace('.', '_')}", path)
    assert spec
    assert spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def commands(
    dagbag: Any,
    render_spark: Callable[..., dict[str, Any]],
    render_stage_pod: Callable[..., dict[str, Any]],
) -> dict[str, tuple[str, list[str]]]:
    """task -> (module, argv) for every task of every lakehouse DAG."""
    from lakehouse_dags.operators import LakehousePodOperator, LakehouseSparkOperator

    out = {}
    for dag_id in sorted(dagbag.dag_ids):
        for task in dagbag.dags[dag_id].tasks:
            key = f"{dag_id}.{task.task_id}"
            if isinstance(task, LakehouseSparkOperator):
                spec = render_spark(task)["spec"]
                main = spec["mainApplicationFile"]
                prefix = f"local://{APP_ROOT}/"
                assert main.startswith(prefix), main
                assert main.endswith(".py"), main
                module = main[len(prefix) : -len(".py")].replace("/", ".")
                out[key] = (module, spec["arguments"])
            elif isinstance(task, LakehousePodOperator):
                (container,) = render_stage_pod(task)["spec"]["containers"]
                python, flag, module = container["command"]
                assert (python, flag) == ("python", "-m")
                out[key] = (module, container["args"])
            else:
                raise AssertionError(f"{key}: unexpected operator {type(task).__name__}")
    return out


def test_every_command_is_an_entrypoint_accepting_the_interval(
    dagbag: Any,
    render_spark: Callable[..., dict[str, Any]],
    render_stage_pod: Callable[..., dict[str, Any]],
    cluster_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = commands(dagbag, render_spark, render_stage_pod)
    assert len(found) == 11  # 9 stages + 2 maintenance jobs
    for key, (module_name, argv) in found.items():
        module = load(module_name)
        source = module_file(module_name).read_text()
        assert 'if __name__ == "__main__":' in source, f"{key}: {module_name} is not runnable"
        assert callable(getattr(module, "main", None)), f"{key}: {module_name} has no main(argv)"
        real = module.parse_interval

        def intercept(parser: Any, args: Any, real: Any = real) -> Any:
            raise Parsed(real(parser, args))

        monkeypatch.setattr(module, "parse_interval", intercept)
        with pytest.raises(Parsed) as parsed:
            module.main(argv)
        ns = parsed.value.namespace
        assert (ns.start, ns.end, ns.run_id) == (
            date(2026, 1, 5),
            date(2026, 1, 6),
            SAMPLE_RUN_ID,
        ), key


def test_unparsable_interval_is_rejected_by_the_entrypoint() -> None:
    """The check above is not vacuous: the stages' parser rejects a broken interval."""
    from lakehouse.context import interval_parser, parse_interval

    with pytest.raises(SystemExit):
        parse_interval(interval_parser("x"), ["--start", "2026-01-06", "--end", "2026-01-05"])


def test_a_run_without_data_interval_fails_clearly() -> None:
    from lakehouse_dags.deployment import DEPLOYMENT, DeploymentError

    with pytest.raises(DeploymentError, match="logical date"):
        DEPLOYMENT.stage_arguments(None, None, "manual__x")
