"""PyTorchEstimator: a torch module saved with joblib and served like any estimator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest

from serving.estimators import PyTorchEstimator
from tests.support.serving import serve_estimator

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def classifier(iris) -> tuple[PyTorchEstimator, object, np.ndarray]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    X = iris[1]
    estimator = PyTorchEstimator(module, classes=["setosa", "versicolor", "virginica"]).fit(X)
    with torch.no_grad():
        expected = torch.softmax(module(torch.as_tensor(X, dtype=torch.float32)), dim=1)
    return estimator, module, expected.double().numpy()


def test_predict_proba_is_the_softmax_of_the_module(classifier, iris) -> None:
    estimator, _, expected = classifier
    X = iris[1]
    proba = estimator.predict_proba(X)
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert estimator.n_features_in_ == 4
    assert estimator.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert estimator.predict(X[:3]).tolist() == estimator.classes_[proba[:3].argmax(1)].tolist()
    small_batches = PyTorchEstimator(classifier[1], classes=[0, 1, 2], batch_size=7).fit(X)
    np.testing.assert_allclose(small_batches.predict_proba(X), expected, atol=1e-6)


def test_regressor_has_no_predict_proba(diabetes) -> None:
    torch.manual_seed(0)
    X = diabetes[1]
    estimator = PyTorchEstimator(torch.nn.Linear(10, 1)).fit(X, diabetes[0].predict(X))
    assert not hasattr(estimator, "predict_proba")
    assert estimator.predict(X[:5]).shape == (5,)


def test_importing_serving_does_not_import_torch() -> None:
    code = (
        "import sys, serving.app, serving.estimators, serving.loading, serving.__main__\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_joblib_round_trip_into_a_fresh_process(classifier, iris, tmp_path: Path) -> None:
    estimator, _, expected = classifier
    artifact = tmp_path / "torch.joblib"
    joblib.dump(estimator, artifact)
    code = (
        "import json, sys, joblib, numpy as np\n"
        "from sklearn.datasets import load_iris\n"
        "model = joblib.load(sys.argv[1])\n"
        "X = load_iris().data\n"
        "print(json.dumps({'proba': model.predict_proba(X).tolist(),"
        " 'classes': model.classes_.tolist(), 'n': model.n_features_in_}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(artifact)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    np.testing.assert_allclose(result["proba"], expected, atol=1e-6)
    assert result["classes"] == ["setosa", "versicolor", "virginica"]
    assert result["n"] == 4


def test_served_predictions_equal_the_module(classifier, iris, start_serving, tmp_path) -> None:
    estimator, _, expected = classifier
    config = serve_estimator(
        tmp_path,
        "torch-iris",
        estimator,
        model_type="joblib",
        job="classification",
        input_size=4,
    )
    server = start_serving(config)
    X = iris[1]
    body = httpx.post(f"{server.url}/predict", json=X.tolist(), timeout=30).json()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)
    server.stop()
