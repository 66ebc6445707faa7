"""Small real models and artifacts for tests, made from scikit-learn's bundled data sets."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge


def iris_classifier() -> tuple[LogisticRegression, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(X, y), X


def diabetes_regressor() -> tuple[Ridge, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return Ridge(alpha=1.0).fit(X, y), X


def save(estimator: object, path: Path, model_type: str) -> Path:
    if model_type == "joblib":
        joblib.dump(estimator, path)
    elif model_type == "pkl":
        with path.open("wb") as f:
            pickle.dump(estimator, f)
    else:
        import skops.io

        skops.io.dump(estimator, path)
    return path
