"""The ML stages' start-up cost, paid ahead: the embedded runner calls ``warm_up`` in the
background while the Spark stages run (their Python thread only waits on the JVM), so the first
ML stage does not spend seconds importing MLflow, scikit-learn, LightGBM, matplotlib and the
table libraries, nor creating a fresh local MLflow store's tables.

Only what the stages would do anyway happens here, in the same way: an error is left for the
stage itself to report, where its handling lives."""

from __future__ import annotations

import importlib

from lakehouse.settings import Settings
from ml import registry
from ml.stage import quiet

LIBRARIES = (
    "deltalake",
    "pyiceberg.catalog.sql",
    "pyiceberg.expressions",
    "sklearn.ensemble",
    "sklearn.metrics",
    "lightgbm",
    "mlflow.sklearn",
)


def warm_up(settings: Settings) -> None:
    from ml.report import pyplot  # here: the report stage itself offers this hook

    quiet()
    for name in LIBRARIES:
        importlib.import_module(name)
    pyplot()
    quiet()  # importing mlflow configures its loggers
    if registry.is_local_store(settings.mlflow_tracking_uri):
        # The first query on a new SQLite store creates its tables (seconds of migrations);
        # a tracking server is left alone (an unreachable one retries for minutes).
        registry.client(settings).search_experiments(max_results=1)
