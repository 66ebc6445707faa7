"""The served model: what the estimator offers and one call that runs it.

Protocol-neutral: both /predict and the Open Inference Protocol adapter call `run()`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import orjson
import sklearn

from serving import fastpath
from serving.config import ServingConfig
from serving.errors import PredictionFailed

log = logging.getLogger("serving")


class ModelError(Exception):
    """The estimator does not fit the config (job, feature count) or fails its warm-up.

    `reason` names the check that failed (no_predict, n_features, no_predict_proba,
    no_classes, warm_up), so the console can say it in its own words.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class ServedModel:
    """An estimator plus what the config says about it."""

    def __init__(self, cfg: ServingConfig, estimator: object) -> None:
        self.cfg = cfg
        self.estimator = estimator
        # The name clients address it by: the deployment's when the config names one.
        self.name = cfg.deployment_name or cfg.name
        self.n_features = cfg.input_size
        self.classes: list[Any] | None = None
        kind = type(estimator).__name__
        if not callable(getattr(estimator, "predict", None)):
            raise ModelError(f"the artifact is a {kind}, which has no predict()", "no_predict")
        n_in = getattr(estimator, "n_features_in_", None)
        if isinstance(n_in, int | np.integer) and int(n_in) != cfg.input_size:
            raise ModelError(
                f"inputSize is {cfg.input_size} but the model was trained on {int(n_in)} features",
                "n_features",
            )
        if cfg.job == "classification":
            if not callable(getattr(estimator, "predict_proba", None)):
                raise ModelError(
                    f"job is classification but {kind} has no predict_proba()", "no_predict_proba"
                )
            classes = getattr(estimator, "classes_", None)
            if classes is None:
                raise ModelError(f"job is classification but {kind} has no classes_", "no_classes")
            self.classes = np.asarray(classes).tolist()
            # The primary output first: it is what /predict answers and infer returns by default.
            self.outputs: tuple[str, ...] = ("predict_proba", "predict")
        else:
            self.outputs = ("predict",)
        self.classes_json = orjson.dumps(self.classes)
        self.fast: dict[str, fastpath.OutputFn] = {}
        if cfg.fast_path:
            self._take_fast_paths()

    def _take_fast_paths(self) -> None:
        """Use the numpy fast path of each output that answers exactly like the estimator."""
        candidates = fastpath.fast_outputs(self.estimator)
        rows = fastpath.probe_rows(self.n_features)
        kind = type(self.estimator).__name__
        for output in self.outputs:
            fast = candidates.get(output)
            if fast is None:
                continue
            try:
                problem = fastpath.check(fast, functools.partial(self._call, output), rows)
            except Exception as exc:  # the estimator itself failed on the probe rows
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                self.fast[output] = fast
            else:
                log.warning("%s.%s: not using the fast path: %s", kind, output, problem)
        if self.fast:
            log.info(
                "%s: numpy fast path for %s (same answers as scikit-learn on %d probe rows)",
                kind,
                ", ".join(self.fast),
                rows.shape[0],
            )

    def _call(self, output: str, matrix: np.ndarray) -> np.ndarray:
        # Inputs were validated as finite numbers before they got here, so scikit-learn's
        # own finiteness and parameter checks (a measurable part of a small call) are off.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(getattr(self.estimator, output)(matrix))

    @property
    def primary_output(self) -> str:
        return self.outputs[0]

    def run(self, output: str, matrix: np.ndarray) -> np.ndarray:
        """Call the estimator, or its fast path (blocking: the batcher decides where it runs)."""
        fast = self.fast.get(output)
        try:
            result = fast(matrix) if fast is not None else self._call(output, matrix)
        except Exception as exc:
            raise PredictionFailed(f"{output} failed: {type(exc).__name__}: {exc}") from None
        if result.ndim == 0 or result.shape[0] != matrix.shape[0]:
            raise PredictionFailed(
                f"{output} returned {result.shape[0] if result.ndim else 'a scalar'} "
                f"results for {matrix.shape[0]} rows"
            )
        return result

    def warm_up(self) -> None:
        """One prediction on a row of zeros, so readiness means a prediction has succeeded."""
        try:
            self.run(self.primary_output, np.zeros((1, self.n_features)))
        except PredictionFailed as exc:
            raise ModelError(f"warm-up prediction failed: {exc}", "warm_up") from None
