"""The anomaly detector (an IsolationForest on per-device-normalised features) and its
evaluation against the generator's labels. Pure: frames in, numbers out."""

from __future__ import annotations

from itertools import pairwise

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.metrics import precision_recall_curve

from lakehouse.events import AnomalyKind

# Feature-table columns the detector reads (its signature).
DETECTOR_INPUTS: tuple[str, ...] = (
    "resid_z",
    "local_z",
    "level_z",
    "level_trailing_z",
    "level_leading_z",
    "stuck_length",
)
KINDS: tuple[str, ...] = tuple(k.value for k in AnomalyKind)
# Rows per scoring thread, at least: below this a thread's start-up outweighs its share.
MIN_ROWS_PER_SCORING_THREAD = 20_000
# Types MLflow's skops serialisation must be told to trust (our own class, sklearn's trees).
TRUSTED_TYPES: tuple[str, ...] = ("ml.anomaly.AnomalyDetector", "sklearn.tree._tree.Tree")


def detector_matrix(frame: pd.DataFrame) -> np.ndarray:
    """What the forest isolates: how far a reading is from its neighbours (spikes), how far
    the hour around it sits from the baseline (drifts; the one-sided means keep the hour just
    after a drift from looking drifted) and how long its value has been frozen (stuck).
    Features are already in units of each device's noise, so one forest serves every sensor."""
    level = np.maximum(
        frame["level_z"].abs(),
        np.minimum(frame["level_trailing_z"].abs(), frame["level_leading_z"].abs()),
    )
    return np.column_stack(
        [
            frame["local_z"].abs().to_numpy(float),
            level.to_numpy(float),
            np.log(frame["stuck_length"].to_numpy(float).clip(min=1)),
            frame["resid_z"].abs().to_numpy(float),
        ]
    )


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score cut-off that maximises F1 on labelled training data: the forest ranks, the
    labels pick one number."""
    if not labels.any():
        raise ValueError("no labelled anomalies in the training window to set a threshold")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


class AnomalyDetector(BaseEstimator):
    """IsolationForest plus a decision threshold; ``predict`` returns 1 for anomalies."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int = 1024,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, frame: pd.DataFrame, labels: np.ndarray | None = None) -> AnomalyDetector:
        matrix = detector_matrix(frame)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(matrix)),
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(matrix)
        scores = self.anomaly_score(frame)
        self.threshold_ = (
            best_f1_threshold(np.asarray(labels, bool), scores)
            if labels is not None
            else float(np.quantile(scores, 0.97))
        )
        return self

    def anomaly_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Higher = more anomalous (the negated IsolationForest score).

        The forest scores one tree after another; its tree walks release the GIL, so blocks of
        rows are scored on threads, one per CPU this process may use (joblib counts cgroup
        quotas). Each row still sums its trees in the same order: the scores equal a
        single-threaded run's bit for bit."""
        matrix = detector_matrix(frame)
        blocks = scoring_blocks(len(matrix), joblib.effective_n_jobs(-1))
        if len(blocks) < 2:
            return -self.forest_.score_samples(matrix)
        parts = joblib.Parallel(n_jobs=len(blocks), prefer="threads")(
            joblib.delayed(self.forest_.score_samples)(matrix[block]) for block in blocks
        )
        return -np.concatenate(parts)

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """1 where a score from ``anomaly_score`` reaches the threshold."""
        return (scores >= self.threshold_).astype("int64")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.flags(self.anomaly_score(frame))


def scoring_blocks(rows: int, cpus: int) -> list[slice]:
    """Contiguous row blocks to score in parallel: one per CPU, none smaller than
    MIN_ROWS_PER_SCORING_THREAD (a single block when the rows are few)."""
    count = max(1, min(cpus, rows // MIN_ROWS_PER_SCORING_THREAD))
    bounds = np.linspace(0, rows, count + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in pairwise(bounds)]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate(kinds: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 overall and per kind. ``kinds`` is the true label per reading
    (None/NaN = normal). Per kind, the readings of the other kinds are left out: precision_k =
    detected k / (detected k + false alarms on normal readings)."""
    predicted = np.asarray(predicted, bool)
    kinds = kinds.reset_index(drop=True)
    normal = kinds.isna().to_numpy()
    false_alarms = int((predicted & normal).sum())
    metrics: dict[str, float] = {}
    tp = int((predicted & ~normal).sum())
    p, r, f = _prf(tp, false_alarms, int((~predicted & ~normal).sum()))
    metrics |= {"precision": p, "recall": r, "f1": f}
    for kind in KINDS:
        mask = (kinds == kind).to_numpy()
        tp_k = int((predicted & mask).sum())
        p, r, f = _prf(tp_k, false_alarms, int((~predicted & mask).sum()))
        metrics |= {f"precision_{kind}": p, f"recall_{kind}": r, f"f1_{kind}": f}
        metrics[f"support_{kind}"] = float(mask.sum())
    metrics["false_alarms"] = float(false_alarms)
    metrics["support_normal"] = float(normal.sum())
    return metrics
