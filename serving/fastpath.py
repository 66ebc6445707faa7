"""Fast paths for linear models, forests and LightGBM, used only once they match the estimator.

Some estimators' own prediction calls cost far more than their arithmetic: a linear model's
`predict_proba` spends 80-100 us around a few microseconds of numbers (input validation,
array-API dispatch, config lookups), and a 100-tree forest spends 5 ms dispatching its trees
through joblib where walking them takes 0.3 ms; LightGBM's wrapper spends 300 us around its
booster's 20 us one-row prediction. For the exact estimator types below (and Pipelines of
StandardScaler steps ending in one), the same computation is done here straight from the
fitted attributes, in the same order of operations as the estimator's own call. A fast
path is only used after it has given the same answers as the estimator itself on probe rows
(`check`); otherwise the model is served through scikit-learn as usual. `fastPath: false` in the
config turns this off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

OutputFn = Callable[[np.ndarray], np.ndarray]

# Labels must be equal; numbers this close (they are normally bit-equal).
_TOLERANCE = 1e-12
_PROBE_ROWS = 64

_LINEAR_CLASSIFIERS = {("sklearn.linear_model._logistic", "LogisticRegression")}
_LINEAR_REGRESSORS = {
    ("sklearn.linear_model._base", "LinearRegression"),
    ("sklearn.linear_model._ridge", "Ridge"),
    ("sklearn.linear_model._coordinate_descent", "Lasso"),
    ("sklearn.linear_model._coordinate_descent", "ElasticNet"),
}

_FOREST_CLASSIFIERS = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),
}
_FOREST_REGRESSORS = {
    ("sklearn.ensemble._forest", "RandomForestRegressor"),
    ("sklearn.ensemble._forest", "ExtraTreesRegressor"),
}

_LIGHTGBM_CLASSIFIER = ("lightgbm.sklearn", "LGBMClassifier")
_LIGHTGBM_REGRESSOR = ("lightgbm.sklearn", "LGBMRegressor")

_PIPELINE = ("sklearn.pipeline", "Pipeline")
_STANDARD_SCALER = ("sklearn.preprocessing._data", "StandardScaler")

# Batches of fewer rows than this run OpenMP estimators (HistGradientBoosting, XGBoost,
# LightGBM) on one thread: waking a thread team costs more than it saves on a few rows, and
# on a busy machine the call waits for the slowest thread to be scheduled (bench/tabular.py:
# a one-row HistGradientBoosting call took 25 ms with two threads, 0.8 ms with one).
OPENMP_PARALLEL_ROWS = 2000


def fast_outputs(estimator: object) -> dict[str, OutputFn]:
    """Fast versions of the estimator's outputs by name, or {} for any other estimator."""
    kind = (type(estimator).__module__, type(estimator).__name__)
    if kind == _PIPELINE:
        return _pipeline(estimator)
    if kind in _FOREST_CLASSIFIERS or kind in _FOREST_REGRESSORS:
        return _forest(estimator, classifier=kind in _FOREST_CLASSIFIERS)
    if kind in _LINEAR_CLASSIFIERS or kind in _LINEAR_REGRESSORS:
        return _linear(estimator, classifier=kind in _LINEAR_CLASSIFIERS)
    if kind in (_LIGHTGBM_CLASSIFIER, _LIGHTGBM_REGRESSOR):
        return _lightgbm(estimator, classifier=kind == _LIGHTGBM_CLASSIFIER)
    return {}


def _linear(estimator: Any, classifier: bool) -> dict[str, OutputFn]:
    try:
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    except (AttributeError, TypeError, ValueError):  # unfitted, or a sparsified coef_
        return {}
    if classifier:
        return _linear_classifier(coef, intercept, np.asarray(estimator.classes_))
    if coef.ndim == 1:  # one target
        return {"predict": _linear_regressor(coef, intercept)}
    return {}


def _linear_classifier(
    coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray
) -> dict[str, OutputFn]:
    coef_t = np.ascontiguousarray(coef.T)

    def decision(matrix: np.ndarray) -> np.ndarray:
        scores = matrix @ coef_t + intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    if classes.size <= 2:
        # LogisticRegression: a sigmoid of the one decision value per row.
        def predict_proba(matrix: np.ndarray) -> np.ndarray:
            prob = expit(decision(matrix))
            return np.stack([1 - prob, prob], axis=1)

        def predict(matrix: np.ndarray) -> np.ndarray:
            return classes.take((decision(matrix) > 0).astype(np.intp))

    else:
        # Multinomial: a softmax of the decision values (sklearn.utils.extmath.softmax; the
        # ufuncs' own reductions are what ndarray.max and .sum call, minus a Python layer).
        def predict_proba(matrix: np.ndarray) -> np.ndarray:
            scores = matrix @ coef_t
            scores += intercept
            scores -= np.maximum.reduce(scores, axis=1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= np.add.reduce(scores, axis=1, keepdims=True)
            return scores

        def predict(matrix: np.ndarray) -> np.ndarray:
            return classes.take(decision(matrix).argmax(axis=1))

    return {"predict_proba": predict_proba, "predict": predict}


def _linear_regressor(coef: np.ndarray, intercept: np.ndarray) -> OutputFn:
    def predict(matrix: np.ndarray) -> np.ndarray:
        return matrix @ coef + intercept

    return predict


def _forest(estimator: Any, classifier: bool) -> dict[str, OutputFn]:
    """The forest's own averaging of its trees (ForestClassifier.predict_proba and
    ForestRegressor.predict), calling each fitted tree directly instead of through joblib."""
    if getattr(estimator, "n_outputs_", None) != 1:
        return {}
    trees = [tree.tree_ for tree in estimator.estimators_]
    if not trees:
        return {}

    def features(matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(matrix, dtype=np.float32)  # what the trees were fitted on

    if not classifier:

        def predict(matrix: np.ndarray) -> np.ndarray:
            rows = features(matrix)
            total = np.zeros(rows.shape[0])
            for tree in trees:
                total += tree.predict(rows)[:, 0]
            total /= len(trees)
            return total

        return {"predict": predict}

    n_classes = int(estimator.n_classes_)
    classes = np.asarray(estimator.classes_)

    def predict_proba(matrix: np.ndarray) -> np.ndarray:
        rows = features(matrix)
        total = np.zeros((rows.shape[0], n_classes))
        for tree in trees:
            total += tree.predict(rows)[:, :n_classes]
        total /= len(trees)
        return total

    def predict_labels(matrix: np.ndarray) -> np.ndarray:
        return classes.take(np.argmax(predict_proba(matrix), axis=1), axis=0)

    return {"predict_proba": predict_proba, "predict": predict_labels}


def _lightgbm(estimator: Any, classifier: bool) -> dict[str, OutputFn]:
    """LGBMModel.predict's call of its booster, with the parameters it would pass worked out
    once: its wrapper validates the input through scikit-learn and rebuilds those parameters at
    every call (about 300 us of a 20 us one-row prediction)."""
    try:
        from lightgbm.basic import _choose_param_value, _ConfigAliases

        booster = estimator.booster_
        if callable(estimator._objective):  # raw scores, not probabilities
            return {}
        params = estimator._process_params(stage="predict")
        for alias in _ConfigAliases.get_by_alias(
            "data", "X", "raw_score", "start_iteration", "num_iteration", "pred_leaf",
            "pred_contrib",
        ):  # fmt: skip
            params.pop(alias, None)
        params = _choose_param_value("num_threads", params, estimator.n_jobs)
        cores = estimator._process_n_jobs(params.pop("num_threads"))
        classes = np.asarray(estimator.classes_) if classifier else None
        binary = classifier and int(estimator.n_classes_) == 2
    except Exception:  # noqa: BLE001 - unfitted, or a LightGBM whose internals differ
        return {}

    def predict_values(matrix: np.ndarray) -> np.ndarray:
        threads = cores if matrix.shape[0] >= OPENMP_PARALLEL_ROWS else 1
        return booster.predict(matrix, num_threads=threads, **params)

    if classes is None:
        return {"predict": predict_values}

    def predict_proba(matrix: np.ndarray) -> np.ndarray:
        result = predict_values(matrix)
        return np.vstack((1.0 - result, result)).transpose() if binary else result

    def predict(matrix: np.ndarray) -> np.ndarray:
        return classes.take(np.argmax(predict_proba(matrix), axis=1))

    return {"predict_proba": predict_proba, "predict": predict}


def _pipeline(pipeline: Any) -> dict[str, OutputFn]:
    """Pipeline.predict_proba and .predict: the transforms in order, then the final step's fast
    path. Only StandardScaler transforms qualify (and 'passthrough' steps)."""
    *transforms, final = [step for _, step in pipeline.steps]
    scalings = []
    for step in transforms:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if (type(step).__module__, type(step).__name__) != _STANDARD_SCALER:
            return {}
        scalings.append(_standard_scaling(step))

    def after_scaling(output: OutputFn) -> OutputFn:
        def run(matrix: np.ndarray) -> np.ndarray:
            for scaling in scalings:
                matrix = scaling(matrix)
            return output(matrix)

        return run

    return {name: after_scaling(output) for name, output in fast_outputs(final).items()}


def _standard_scaling(scaler: Any) -> OutputFn:
    """StandardScaler.transform on a dense float64 matrix (new arrays: the input is not changed)."""
    mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
    scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None

    def transform(matrix: np.ndarray) -> np.ndarray:
        if mean is not None:
            matrix = matrix - mean
        if scale is not None:
            matrix = matrix / scale
        return matrix

    return transform


def probe_rows(n_features: int) -> np.ndarray:
    """Rows to compare on: zeros, and values at several scales (fixed, so loads repeat)."""
    rng = np.random.default_rng(0)
    scales = np.repeat([1e-3, 1.0, 10.0, 1e3], _PROBE_ROWS // 4).reshape(-1, 1)
    rows = rng.normal(size=(_PROBE_ROWS, n_features)) * scales
    return np.vstack([np.zeros((1, n_features)), rows])


def check(fast: OutputFn, slow: OutputFn, rows: np.ndarray) -> str | None:
    """None if `fast` answers like `slow` on rows, else what differs."""
    want = np.asarray(slow(rows))
    got = np.asarray(fast(rows))
    if got.shape != want.shape or got.dtype.kind != want.dtype.kind:
        return f"shape or type differs ({got.shape} {got.dtype} vs {want.shape} {want.dtype})"
    if want.dtype.kind in "fc":
        if not np.allclose(got, want, rtol=_TOLERANCE, atol=_TOLERANCE):
            return f"values differ by up to {float(np.max(np.abs(got - want))):.3g}"
    elif not np.array_equal(got, want):
        return "labels differ"
    return None
