"""The fast paths (linear models, forests, LightGBM) answer exactly like the estimator, or are
not used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from serving import fastpath
from serving.config import ModelSource, ServingConfig, load_config
from serving.model import ServedModel
from tests.support.serving import ServingProcess, write_config


def _config(job: str, n_features: int, fast_path: bool = True) -> ServingConfig:
    return ServingConfig(
        model_type="joblib",
        job=job,
        model=ModelSource(method="LOCAL", path="unused"),
        input_size=n_features,
        fast_path=fast_path,
    )


def _rows(X: np.ndarray) -> np.ndarray:
    """Held-out style rows: the data, shuffled and rescaled, plus extremes far outside it."""
    rng = np.random.default_rng(1)
    extremes = rng.normal(size=(20, X.shape[1])) * X.std(axis=0) * 1e3
    return np.vstack([X[::3] * 1.1 - 0.5, extremes, np.zeros((1, X.shape[1]))])


def _classification_cases() -> list[tuple[str, LogisticRegression, np.ndarray]]:
    iris_X, iris_y = load_iris(return_X_y=True)
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    return [
        ("multinomial", LogisticRegression(max_iter=1000).fit(iris_X, iris_y), iris_X),
        ("binary", LogisticRegression(max_iter=5000).fit(cancer_X, cancer_y), cancer_X),
        ("string labels", LogisticRegression(max_iter=1000).fit(iris_X, names), iris_X),
        (
            "no intercept",
            LogisticRegression(max_iter=1000, fit_intercept=False).fit(iris_X, iris_y),
            iris_X,
        ),
    ]


@pytest.mark.parametrize(("case", "model", "X"), _classification_cases())
def test_logistic_regression_matches_scikit_learn(case: str, model, X) -> None:
    fast = fastpath.fast_outputs(model)
    rows = _rows(X)
    np.testing.assert_allclose(
        fast["predict_proba"](rows), model.predict_proba(rows), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(fast["predict"](rows), model.predict(rows))


@pytest.mark.parametrize(
    "estimator",
    [LinearRegression(), Ridge(alpha=0.5), Lasso(alpha=0.1), ElasticNet(alpha=0.1)],
    ids=lambda e: type(e).__name__,
)
def test_linear_regressors_match_scikit_learn(estimator) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = estimator.fit(X, y)
    rows = _rows(X)
    np.testing.assert_allclose(
        fastpath.fast_outputs(model)["predict"](rows), model.predict(rows), rtol=1e-12, atol=1e-9
    )


@pytest.mark.parametrize("forest", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("case", ["multiclass", "binary", "string labels"])
def test_forest_classifiers_match_scikit_learn(forest, case: str) -> None:
    if case == "binary":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = load_iris(return_X_y=True)
        if case == "string labels":
            y = np.array(["setosa", "versicolor", "virginica"])[y]
    model = forest(n_estimators=15, max_depth=6, random_state=0).fit(X, y)
    fast = fastpath.fast_outputs(model)
    rows = _rows(X)
    np.testing.assert_array_equal(fast["predict_proba"](rows), model.predict_proba(rows))
    np.testing.assert_array_equal(fast["predict"](rows), model.predict(rows))


@pytest.mark.parametrize("forest", [RandomForestRegressor, ExtraTreesRegressor])
def test_forest_regressors_match_scikit_learn(forest) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = forest(n_estimators=15, max_depth=6, random_state=0).fit(X, y)
    rows = _rows(X)
    np.testing.assert_array_equal(
        fastpath.fast_outputs(model)["predict"](rows), model.predict(rows)
    )
    two_targets = forest(n_estimators=3, random_state=0).fit(X, np.c_[y, y])
    assert fastpath.fast_outputs(two_targets) == {}  # served through scikit-learn


@pytest.mark.parametrize(
    "steps",
    [
        lambda: [StandardScaler(), LogisticRegression(max_iter=1000)],
        lambda: [StandardScaler(with_mean=False), "passthrough", LogisticRegression(max_iter=1000)],
        lambda: [StandardScaler(with_std=False), RandomForestClassifier(n_estimators=5)],
    ],
    ids=["scaled logistic regression", "passthrough step", "centred forest"],
)
def test_pipelines_of_standard_scalers_match_scikit_learn(steps) -> None:
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(*steps()).fit(X, y)
    fast = fastpath.fast_outputs(model)
    rows = _rows(X)
    before = rows.copy()
    np.testing.assert_allclose(
        fast["predict_proba"](rows), model.predict_proba(rows), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(fast["predict"](rows), model.predict(rows))
    np.testing.assert_array_equal(rows, before)  # the caller's matrix is not scaled in place


def test_pipelines_with_other_steps_get_no_fast_path() -> None:
    X, y = load_iris(return_X_y=True)
    other_transform = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    slow_final = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=3))
    assert fastpath.fast_outputs(other_transform) == {}
    assert fastpath.fast_outputs(slow_final.fit(X, y)) == {}


def test_served_model_takes_the_fast_path_only_when_allowed() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    served = ServedModel(_config("classification", 4), model)
    assert set(served.fast) == {"predict_proba", "predict"}
    np.testing.assert_allclose(
        served.run("predict_proba", X[:5]), model.predict_proba(X[:5]), rtol=0, atol=1e-12
    )
    assert ServedModel(_config("classification", 4, fast_path=False), model).fast == {}


def test_lightgbm_answers_like_its_scikit_learn_wrapper() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor

    iris_X, iris_y = load_iris(return_X_y=True)
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True)
    diabetes_X, diabetes_y = load_diabetes(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    cases = [
        ("binary", LGBMClassifier(n_estimators=20, verbose=-1).fit(cancer_X, cancer_y), cancer_X),
        ("multiclass", LGBMClassifier(n_estimators=20, verbose=-1).fit(iris_X, names), iris_X),
        ("regression", LGBMRegressor(n_estimators=20, verbose=-1).fit(diabetes_X, diabetes_y),
         diabetes_X),
    ]  # fmt: skip
    for name, model, X in cases:
        fast = fastpath.fast_outputs(model)
        rows = _rows(X)
        for output, function in fast.items():
            want = getattr(model, output)(rows)
            got = function(rows)
            assert got.dtype.kind == want.dtype.kind, (name, output)
            assert np.array_equal(got, want), (name, output)  # the same booster call: bit-equal
        big = np.repeat(rows, fastpath.OPENMP_PARALLEL_ROWS // len(rows) + 1, axis=0)
        primary = "predict" if name == "regression" else "predict_proba"
        assert np.array_equal(fast[primary](big), getattr(model, primary)(big)), name  # all cores
        job = "regression" if name == "regression" else "classification"
        served = ServedModel(_config(job, X.shape[1]), model)
        assert set(served.fast) == set(served.outputs), name

    custom = LGBMRegressor(
        n_estimators=5, verbose=-1, objective=lambda y, p: (p - y, np.ones_like(p))
    )
    assert fastpath.fast_outputs(custom.fit(diabetes_X, diabetes_y)) == {}  # raw scores: no path
    assert fastpath.fast_outputs(LGBMClassifier()) == {}  # not fitted


def test_other_estimators_and_subclasses_get_no_fast_path() -> None:
    X, y = load_iris(return_X_y=True)

    class Calibrated(LogisticRegression):
        """A subclass may change predict_proba: only the exact scikit-learn types qualify."""

        def predict_proba(self, X):
            return super().predict_proba(X) ** 2

    boosted = GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, y)
    assert fastpath.fast_outputs(boosted) == {}
    assert fastpath.fast_outputs(Calibrated(max_iter=1000).fit(X, y)) == {}
    assert ServedModel(_config("classification", 4), boosted).fast == {}


def test_check_reports_a_fast_path_that_differs() -> None:
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    rows = fastpath.probe_rows(X.shape[1])
    assert fastpath.check(fastpath.fast_outputs(model)["predict"], model.predict, rows) is None
    problem = fastpath.check(lambda m: model.predict(m) + 1e-6, model.predict, rows)
    assert problem is not None and "values differ by up to 1e-06" in problem
    labels = LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True))
    wrong = fastpath.check(lambda m: labels.predict(m)[::-1], labels.predict, rows[:, :4])
    assert wrong == "labels differ"


def test_served_answers_are_the_same_with_and_without_the_fast_path(
    start_serving: Callable[..., ServingProcess],
    iris_server: ServingProcess,
    iris,
    workdir: Path,
    iris_config: Path,
) -> None:
    model, X = iris
    cfg = load_config(iris_config).model_copy(update={"fast_path": False})
    slow = start_serving(write_config(workdir, "iris-slow", cfg))
    rows = _rows(X).tolist()
    fast_answer = httpx.post(f"{iris_server.url}/predict", json=rows, timeout=30).json()
    slow_answer = httpx.post(f"{slow.url}/predict", json=rows, timeout=30).json()
    np.testing.assert_allclose(
        fast_answer["predictions"], slow_answer["predictions"], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(fast_answer["predictions"], model.predict_proba(rows), atol=1e-12)
    assert "numpy fast path for predict_proba, predict" in iris_server.log()
    assert "fast path" not in slow.log()
