"""Estimators for serving tests: serving processes import this module to unpickle them."""

from __future__ import annotations

import os
import threading
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


class GatedWarmUpClassifier(SlowClassifier):
    """Rows of zeros sent through serving's model thread (its warm-up before it says ready)
    wait until the file `gate` exists (at most `delay` seconds): the server stays not ready
    for as long as a test needs, however loaded the machine is. The check at load, on the
    main thread, does not wait."""

    def __init__(self, inner=None, delay: float = 120.0, gate: str = "") -> None:
        super().__init__(inner, delay)
        self.gate = gate

    def predict_proba(self, X):  # noqa: N803
        X = np.asarray(X)
        deadline = time.monotonic() + self.delay
        gated = not X.any() and threading.current_thread() is not threading.main_thread()
        while gated and not os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.inner.predict_proba(X)


class SlowWarmUpClassifier(SlowClassifier):
    """Rows of zeros (the warm-up's) take `delay` seconds: the server stays not ready."""

    def predict_proba(self, X):  # noqa: N803
        X = np.asarray(X)
        if not X.any():
            time.sleep(self.delay)
        return self.inner.predict_proba(X)
