"""MLflow helpers: the tracking store from settings, experiments, registration and the
``champion`` alias, which moves only when a new model beats the current champion on the same
evaluation data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.settings import Settings
from ml.stage import quiet

CHAMPION = "champion"


def anomaly_model(settings: Settings) -> str:
    """The registered anomaly detector (also its training experiment), named per warehouse
    (LAKEHOUSE_MLFLOW_PREFIX) so warehouses sharing an MLflow server never share a champion."""
    return f"{settings.mlflow_prefix}-anomaly"


def forecast_model(settings: Settings) -> str:
    return f"{settings.mlflow_prefix}-forecast"


def report_experiment(settings: Settings) -> str:
    return f"{settings.mlflow_prefix}-report"


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client(settings: Settings) -> Any:
    """An MlflowClient on the settings' tracking store (which is also the registry)."""
    quiet()
    import mlflow
    from mlflow import MlflowClient

    quiet()  # again: importing mlflow configures its loggers
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def artifact_root(settings: Settings, experiment: str) -> str | None:
    """Local stores keep artifacts under LAKEHOUSE_HOME (not in the current directory, which
    is MLflow's default for a database store); a server decides for itself."""
    if not is_local_store(settings.mlflow_tracking_uri):
        return None
    return (Path(settings.home) / "mlartifacts" / experiment).resolve().as_uri()


def experiment_id(mlflow_client: Any, settings: Settings, name: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return mlflow_client.create_experiment(name, artifact_location=artifact_root(settings, name))


def register(mlflow_client: Any, name: str, info: Any, run_id: str) -> str:
    """A new version of ``name`` for a logged model; through the client, because the fluent
    ``registered_model_name=`` route prints to stderr on every call."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)
    created = mlflow_client.create_model_version(
        name, source=info.model_uri, run_id=run_id, model_id=info.model_id
    )
    return str(created.version)


def champion_version(mlflow_client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        return None


def load_champion(mlflow_client: Any, name: str) -> tuple[Any, str] | None:
    """The champion model object (sklearn flavour) and its version, or None."""
    import mlflow.sklearn

    version = champion_version(mlflow_client, name)
    if version is None:
        return None
    return mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}"), version


@dataclass(frozen=True)
class Decision:
    promoted: bool
    champion_version: str
    previous_version: str | None
    previous_score: float | None
    reason: str


def decide(
    new_score: float, champion_score: float | None, higher_is_better: bool, tolerance: float = 1e-9
) -> bool:
    """Whether a challenger takes the alias: only when strictly better (ties keep the
    champion, so a rerun on the same data moves nothing)."""
    if champion_score is None:
        return True
    if higher_is_better:
        return new_score > champion_score + tolerance
    return new_score < champion_score - tolerance


def promote_if_better(
    mlflow_client: Any,
    name: str,
    version: str,
    new_score: float,
    previous: tuple[str, float] | None,
    higher_is_better: bool,
) -> Decision:
    previous_version, previous_score = previous if previous else (None, None)
    if decide(new_score, previous_score, higher_is_better):
        mlflow_client.set_registered_model_alias(name, CHAMPION, version)
        reason = "no champion yet" if previous is None else "beats the champion"
        return Decision(True, version, previous_version, previous_score, reason)
    reason = f"does not beat champion v{previous_version}"
    return Decision(False, str(previous_version), previous_version, previous_score, reason)
