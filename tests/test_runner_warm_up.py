"""The embedded runner's background warm-up of the Python stages (lakehouse/runner.py), and the
ML stages' hook itself (ml/warmup.py)."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import types

import pytest

from lakehouse.pipeline import Stage
from lakehouse.runner import _start_warm_up
from lakehouse.settings import load_settings


def _stage(name: str, module: str, kind: str = "python") -> Stage:
    return Stage(name, kind, module, (), name, ("objectStore",))  # type: ignore[arg-type]


@pytest.fixture
def fake_modules(monkeypatch):
    """Two stage modules sharing one hook, one with a failing hook, one with none."""
    calls: list[tuple[str, str]] = []

    def shared(settings) -> None:
        calls.append(("shared", threading.current_thread().name))

    def failing(settings) -> None:
        raise RuntimeError("no tracking store here")

    for name, hook in (("wu_a", shared), ("wu_b", shared), ("wu_bad", failing), ("wu_none", None)):
        module = types.ModuleType(name)
        if hook is not None:
            module.warm_up = hook
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_each_hook_runs_once_in_the_background_and_a_failure_is_only_logged(
    fake_modules, tmp_path, caplog
) -> None:
    stages = [
        _stage("a", "wu_a"),
        _stage("spark", "wu_none", kind="spark"),
        _stage("bad", "wu_bad"),
        _stage("b", "wu_b"),
        _stage("none", "wu_none"),
    ]
    settings = load_settings({"LAKEHOUSE_HOME": str(tmp_path)})
    with caplog.at_level(logging.DEBUG, logger="lakehouse"):
        thread = _start_warm_up(settings, stages)
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert fake_modules == [("shared", "lakehouse-warm-up")]
    failed = [r for r in caplog.records if "warming up wu_bad failed" in r.getMessage()]
    assert failed and failed[0].exc_info[1].args == ("no tracking store here",)


def test_ml_warm_up_creates_a_new_local_mlflow_store(tmp_path) -> None:
    from ml.warmup import warm_up

    settings = load_settings({"LAKEHOUSE_HOME": str(tmp_path)})
    store = tmp_path / "mlflow.db"
    assert settings.mlflow_tracking_uri == f"sqlite:///{store}"
    assert not store.exists()
    warm_up(settings)
    with sqlite3.connect(store) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "runs", "registered_models", "model_versions"} <= tables


def test_ml_warm_up_leaves_a_tracking_server_alone(tmp_path) -> None:
    """A server may be down or slow; the stage, not the warm-up, should meet that."""
    from ml.warmup import warm_up

    settings = load_settings(
        {"LAKEHOUSE_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    )
    warm_up(settings)  # port 9 (discard) answers nothing: a query would fail or hang
    assert list(tmp_path.iterdir()) == []
