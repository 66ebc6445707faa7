"""Serving's allowlist on its own (no servers): gadgets are refused naming their global, before
they run, in pickle and joblib files; the models people deploy still load."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from serving.allowlist import Screen
from serving.estimators import PyTorchEstimator
from serving.loading import GlobalRefused, load_artifact
from tests.security.gadgets import GADGETS, Gadget

X, Y = load_iris(return_X_y=True)


def save(obj: object, path: Path, model_type: str) -> Path:
    if model_type == "joblib":
        joblib.dump(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path


@pytest.mark.parametrize("model_type", ["pkl", "joblib"])
@pytest.mark.parametrize("gadget", GADGETS, ids=lambda g: g.name)
def test_each_gadget_is_refused_naming_its_global_before_it_runs(
    tmp_path: Path, gadget: Gadget, model_type: str
) -> None:
    marker = tmp_path / "marker"
    keep = tmp_path / "keep"
    keep.mkdir()
    artifact = save(gadget.payload(marker), tmp_path / f"gadget.{model_type}", model_type)

    with pytest.raises(GlobalRefused) as refused:
        load_artifact(artifact, model_type)

    assert refused.value.name == gadget.name
    assert f"imports {gadget.name}" in str(refused.value)
    assert not marker.exists()
    assert keep.is_dir()


def test_a_gadget_nested_in_a_pytorch_module_is_refused(tmp_path: Path) -> None:
    """PyTorchEstimator unpickles its module again through torch.load: screened as well."""
    marker = tmp_path / "marker"
    estimator = PyTorchEstimator(torch.nn.Linear(4, 3), classes=[0, 1, 2])
    estimator.module = GADGETS[2].payload(marker)  # _osx_support._read_output
    artifact = save(estimator, tmp_path / "torch.joblib", "joblib")

    with pytest.raises(GlobalRefused, match="imports _osx_support._read_output"):
        load_artifact(artifact, "joblib")
    assert not marker.exists()


def test_an_approved_global_loads_and_is_recorded(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    artifact = save(GADGETS[-4].payload(marker), tmp_path / "approved.pkl", "pkl")  # os.system
    screen = Screen(["posix.system"])

    load_artifact(artifact, "pkl", screen=screen)

    assert marker.exists()
    assert screen.used_approvals == {"posix.system"}
    assert "posix.system" in screen.seen


def _models() -> dict[str, object]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    categorical = np.array([["a"], ["b"], ["c"]] * 50)
    return {
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y),
        "seeded-forest": RandomForestClassifier(
            n_estimators=3, random_state=np.random.RandomState(0)
        ).fit(X, Y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y),
        "logistic": LogisticRegression(max_iter=500).fit(X, Y),
        "boosting": GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 0]),
        "neighbours": KNeighborsClassifier().fit(X, Y),
        "one-hot": make_pipeline(OneHotEncoder(), LogisticRegression()).fit(categorical, Y),
        "pytorch": PyTorchEstimator(module, classes=[0, 1, 2]).fit(X, Y),
    }


MODELS = _models()


@pytest.mark.parametrize("model_type", ["pkl", "joblib"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_models_people_deploy_load_without_approvals(
    tmp_path: Path, name: str, model_type: str
) -> None:
    model = MODELS[name]
    artifact = save(model, tmp_path / f"model.{model_type}", model_type)
    screen = Screen()

    loaded = load_artifact(artifact, model_type, screen=screen)

    rows = np.array([["a"], ["b"]]) if name == "one-hot" else X[:5]
    np.testing.assert_allclose(loaded.predict(rows), model.predict(rows))
    assert screen.used_approvals == set()
    assert screen.seen  # imported_globals has something to record


def test_what_skops_trusts_by_default_is_on_the_allowlist() -> None:
    """Estimators, scikit-learn internals, containers, dtypes, bit generators and ufuncs that
    skops loads without asking load from a pickle without an approval too."""
    from skops.io import _trusted_types as skops

    screen = Screen()
    refused = []
    names = [
        *skops.SKLEARN_ESTIMATOR_TYPE_NAMES,
        *skops.SKLEARN_INTERNAL_TYPE_NAMES,
        *skops.CONTAINER_TYPE_NAMES,
        *skops.PRIMITIVE_TYPE_NAMES,
        *skops.NUMPY_DTYPE_TYPE_NAMES,
        *skops.NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES,
        *skops.NUMPY_UFUNC_TYPE_NAMES,
        *skops.SCIPY_UFUNC_TYPE_NAMES,
    ]
    assert len(names) > 300
    for dotted in names:
        module, name = dotted.rsplit(".", 1)
        try:
            screen.check(module, name, lambda m, n: getattr(__import__(m, fromlist=[n]), n))
        except Exception as exc:  # noqa: BLE001 - collect every refusal to show them all
            refused.append(f"{dotted}: {exc}")
    assert refused == []
