"""The next-hour forecaster (LightGBM) and forecast metrics. Pure: frames in, numbers out.

The model predicts the next hour's mean as ``profile + scale * z``: ``profile`` is the trailing
day's harmonic fit evaluated at the target hour (a smoothed seasonal-naive forecast) and LightGBM
learns ``z`` from recent deviations and calendar features, in units of the device's spread, so
one model serves sensors whose units differ by three orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml.hourly_features import HOURLY_FEATURES

FORECAST_INPUTS: tuple[str, ...] = (*HOURLY_FEATURES, "profile", "scale")
# Types MLflow's skops serialisation must be told to trust (our own class, LightGBM's).
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRegressor",
    "ml.forecast.Forecaster",
)


def usable(frame: pd.DataFrame) -> pd.Series:
    """Rows with enough history for a reference forecast."""
    return frame["profile"].notna() & frame["scale"].gt(0)


class Forecaster(BaseEstimator):
    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 10,
        objective: str = "l1",
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.objective = objective
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, frame: pd.DataFrame, actual: pd.Series) -> Forecaster:
        import lightgbm as lgb

        target = (np.asarray(actual, float) - frame["profile"].to_numpy(float)) / frame[
            "scale"
        ].to_numpy(float)
        self.model_ = lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            objective=self.objective,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        ).fit(frame[list(HOURLY_FEATURES)], target)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        z = self.model_.predict(frame[list(HOURLY_FEATURES)])
        return frame["profile"].to_numpy(float) + frame["scale"].to_numpy(float) * z


def forecast_metrics(
    actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray, scale: np.ndarray
) -> dict[str, float]:
    """MAE, RMSE, MAPE of the model and of the seasonal-naive baseline (same hour, previous
    day) on the same rows, and the MAE ratios. ``mae_ratio`` is in sensor units, so it is
    dominated by the sensors with the largest units; ``scaled_mae_ratio`` weighs every device
    alike (errors in units of each device's spread)."""
    actual, predicted, naive, scale = (
        np.asarray(a, float) for a in (actual, predicted, naive, scale)
    )
    err, base = actual - predicted, actual - naive
    denom = np.maximum(np.abs(actual), 1e-9)
    out = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": float(np.mean(np.abs(err) / denom) * 100),
        "naive_mae": float(np.mean(np.abs(base))),
        "naive_rmse": float(np.sqrt(np.mean(base**2))),
        "naive_mape": float(np.mean(np.abs(base) / denom) * 100),
    }
    out["mae_ratio"] = out["mae"] / out["naive_mae"] if out["naive_mae"] else float("nan")
    scaled = np.mean(np.abs(base) / scale)
    out["scaled_mae_ratio"] = float(np.mean(np.abs(err) / scale) / scaled) if scaled else np.nan
    out["rows"] = float(len(actual))
    return out
