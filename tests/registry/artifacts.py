"""Artifacts for the registry tests: real models, and files built to misbehave when loaded."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn.base
from sklearn.ensemble import RandomForestClassifier

from tests.support.models import iris_classifier


class RunsCommand:
    """Unpickling calls os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class OpensFile:
    """Unpickling calls open(path, "w"), creating the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class SleepsForever:
    def __reduce__(self):
        return (time.sleep, (3600,))


class AllocatesGiB:
    """Unpickling allocates `gib` GiB of zero bytes."""

    def __init__(self, gib: int) -> None:
        self.gib = gib

    def __reduce__(self):
        return (bytes, (self.gib * 1024**3,))


def pickle_to(obj: object, path: Path) -> Path:
    with path.open("wb") as f:
        pickle.dump(obj, f)
    return path


def padded_classifier(path: Path, size: int) -> Path:
    """An iris classifier carrying `size` bytes of random (incompressible) padding."""
    estimator, _ = iris_classifier()
    estimator.padding_ = np.frombuffer(np.random.default_rng(0).bytes(size), dtype=np.uint8)
    joblib.dump(estimator, path)
    return path


def forest(path: Path, model_type: str) -> Path:
    from tests.support.models import save

    _, X = iris_classifier()
    y = np.arange(len(X)) % 3
    return save(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path, model_type)


def claiming_sklearn_version(path: Path, version: str, monkeypatch) -> Path:
    """An iris classifier whose pickle says it was made with scikit-learn `version`."""
    estimator, _ = iris_classifier()
    with monkeypatch.context() as m:
        m.setattr(sklearn.base, "__version__", version)
        joblib.dump(estimator, path)
    return path
