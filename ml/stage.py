"""What the ML stages share: a result that also carries metrics and artifacts, the pod
entrypoint (``python -m ml.<stage> --start D --end D``) and quieting of library chatter."""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from lakehouse.context import StageContext, StageResult
from lakehouse.entrypoint import run_stage


@dataclass
class MLResult(StageResult):
    """A stage result plus model metrics, table versions and artifact locations, which the
    runner copies into summary.json."""

    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)


def quiet() -> None:
    """Silence MLflow's, LightGBM's and sklearn's progress chatter; warnings and errors of our
    own code still surface."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic", "urllib3", "git", "matplotlib", "pyiceberg"):
        logging.getLogger(name).setLevel(logging.ERROR)
    libraries = r"(mlflow|sklearn|lightgbm|pyiceberg|deltalake|pydantic|sqlalchemy)(\..*)?$"
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        # e.g. pyiceberg's "Delete operation did not match any records" on a first write
        warnings.filterwarnings("ignore", category=category, module=libraries)


def entrypoint(
    stage: str, args: argparse.Namespace, run_interval: Callable[[StageContext], list]
) -> int:
    """Run one ML stage for the interval; print one JSON line per day, or a one-line error
    (never a library traceback) for bad input."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    quiet()
    return run_stage(stage, args, run_interval, expected=(ValueError,))
