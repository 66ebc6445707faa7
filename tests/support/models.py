"""Small real models and artifacts for tests, made from scikit-learn's bundled data sets.

Artifacts built to misbehave when loaded are in hostile.py; estimator classes that serving
processes import to unpickle are in estimators.py.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn.base
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
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


def forest(path: Path, model_type: str) -> Path:
    """A small random forest on iris: its skops file holds a type skops does not trust."""
    _, X = iris_classifier()
    y = np.arange(len(X)) % 3
    return save(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path, model_type)


def padded_classifier(path: Path, size: int) -> Path:
    """An iris classifier carrying `size` bytes of random (incompressible) padding."""
    estimator, _ = iris_classifier()
    estimator.padding_ = np.frombuffer(np.random.default_rng(0).bytes(size), dtype=np.uint8)
    joblib.dump(estimator, path)
    return path


def claiming_sklearn_version(path: Path, version: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An iris classifier whose pickle says it was made with scikit-learn `version`."""
    estimator, _ = iris_classifier()
    with monkeypatch.context() as m:
        m.setattr(sklearn.base, "__version__", version)
        joblib.dump(estimator, path)
    return path


def widthless_classifier(path: Path) -> tuple[Path, bytes]:
    """An iris classifier on three columns as scikit-learn before 0.24 saved it: without
    n_features_in_, so the file does not say how many features it takes; and a sample CSV of
    those columns (a header and three rows)."""
    _, X = iris_classifier()
    y = load_iris().target
    estimator = LogisticRegression(max_iter=1000).fit(X[:, :3], y)
    del estimator.n_features_in_
    joblib.dump(estimator, path)
    rows = "\n".join(",".join(str(v) for v in row) for row in X[:150:50, :3])
    return path, f"sepal_length,sepal_width,petal_length\n{rows}\n".encode()
