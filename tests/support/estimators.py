"""Estimators for serving tests: serving processes import this module to unpickle them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class SlowClassifier(ClassifierMixin, BaseEstimator):
    """Wraps a classifier; a row whose first feature is 99 makes the call take `delay` seconds,
    after creating the file `started` (if given), so a test knows the call has begun."""

    def __init__(self, inner: object = None, delay: float = 1.0, started: str = "") -> None:
        self.inner = inner
        self.delay = delay
        self.started = started

    def fit(self, X, y):  # noqa: N803 - scikit-learn's names
        self.classes_ = self.inner.classes_
        self.n_features_in_ = self.inner.n_features_in_
        return self

    def predict_proba(self, X):  # noqa: N803
        X = np.asarray(X)
        if (X[:, 0] == 99).any():
            if self.started:
                Path(self.started).touch()
            time.sleep(self.delay)
        return self.inner.predict_proba(X)

    def predict(self, X):  # noqa: N803
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class BrokenClassifier(SlowClassifier):
    """Every prediction fails: the warm-up must catch it."""

    def predict_proba(self, X):  # noqa: N803
        raise RuntimeError("weights are corrupt")


class SlowWarmUpClassifier(SlowClassifier):
    """Rows of zeros (the warm-up's) take `delay` seconds: the server stays not ready."""

    def predict_proba(self, X):  # noqa: N803
        X = np.asarray(X)
        if not X.any():
            time.sleep(self.delay)
        return self.inner.predict_proba(X)
