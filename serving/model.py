"""The served model: what the estimator offers and one call that runs it.

Protocol-neutral: both /predict and the Open Inference Protocol adapter call `run()`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

import numpy as np
import orjson
import sklearn

from serving import fastpath
from serving.config import Column, ServingConfig
from serving.errors import InvalidInput, PredictionFailed
from serving.tabular import Table, frame_of

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
        # 0 is unknown, not a width: CatBoost reports it once unpickled.
        if isinstance(n_in, int | np.integer) and n_in and int(n_in) != cfg.input_size:
            raise ModelError(
                f"inputSize is {cfg.input_size} but the model was trained on {int(n_in)} features",
                "n_features",
            )
        self.table, self.frame_columns = _table(cfg, estimator, kind)
        # A classifier without predict_proba (LinearSVC) answers labels, and its
        # decision_function scores when it has them.
        self.probabilities = callable(getattr(estimator, "predict_proba", None))
        self.scores = False
        if cfg.job == "classification":
            classes = getattr(estimator, "classes_", None)
            if classes is None and not self.probabilities:  # a regressor
                raise ModelError(
                    f"job is classification but {kind} has no predict_proba()", "no_predict_proba"
                )
            if classes is None:
                raise ModelError(f"job is classification but {kind} has no classes_", "no_classes")
            self.classes = np.asarray(classes).tolist()
            # The primary output first: it is what /predict answers and infer returns by default.
            if self.probabilities:
                self.outputs: tuple[str, ...] = ("predict_proba", "predict")
            else:
                self.scores = callable(getattr(estimator, "decision_function", None))
                self.outputs = ("predict", "decision_function") if self.scores else ("predict",)
        else:
            self.outputs = ("predict",)
        self._threads = _OpenMP.of_loaded_libraries()
        self.classes_json = orjson.dumps(self.classes)
        self.fast: dict[str, fastpath.OutputFn] = {}
        if cfg.fast_path:
            self._take_fast_paths()

    def _take_fast_paths(self) -> None:
        """Use the numpy fast path of each output that answers exactly like the estimator."""
        if self.table is not None and not self.table.numeric:
            return  # DataFrames with strings: the fast paths take float64 matrices only
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

    def _call(self, output: str, matrix: Any) -> np.ndarray:
        # Inputs were validated before they got here (finite numbers, NaN only in columns that
        # take missing values), so scikit-learn's own finiteness and parameter checks (a
        # measurable part of a small call) are off.
        if self.frame_columns is not None and isinstance(matrix, np.ndarray):
            matrix = frame_of(matrix, self.frame_columns)
        if self._threads is not None:
            self._threads.fit(matrix.shape[0])
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(getattr(self.estimator, output)(matrix))

    @property
    def primary_output(self) -> str:
        return self.outputs[0]

    def run(self, output: str, matrix: Any) -> np.ndarray:
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

    def probe_input(self) -> Any:
        """Rows the model should take: the version's sample rows, else a row that fits the
        schema (first categories, zeros), else a row of zeros."""
        if self.table is None:
            return np.zeros((1, self.n_features))
        rows = self.cfg.sample_rows or [self.table.example_row()]
        try:
            return self.table.from_rows(rows, len(rows))
        except InvalidInput as exc:
            message = f"the sample rows do not fit the input schema: {exc}"
            raise ModelError(message, "sample") from None

    def warm_up(self) -> None:
        """One prediction on the probe rows, so readiness means a prediction has succeeded."""
        try:
            self.run(self.primary_output, self.probe_input())
        except PredictionFailed as exc:
            raise ModelError(f"warm-up prediction failed: {exc}", "warm_up") from None


def _table(
    cfg: ServingConfig, estimator: object, kind: str
) -> tuple[Table | None, list[str] | None]:
    """The input schema (the config's, or the fitted column names as numbers) and the column
    names to give a model fitted on a DataFrame."""
    fitted = getattr(estimator, "feature_names_in_", None)
    names = [str(n) for n in np.asarray(fitted).tolist()] if fitted is not None else None
    columns = cfg.input_schema
    if columns is None:
        if names is None or len(names) != cfg.input_size:
            return None, None
        columns = [Column(name=name) for name in names]
    elif names is not None and [c.name for c in columns] != names:
        raise ModelError(
            f"the input schema's columns ({', '.join(c.name for c in columns)}) are not the "
            f"columns {kind} was fitted on ({', '.join(names)})",
            "schema",
        )
    return Table(columns), names


class _OpenMP:
    """Sets OpenMP's thread count per calling thread (an OpenMP setting is per thread) by the
    batch's size: one thread for small batches, every core for large ones
    (`fastpath.OPENMP_PARALLEL_ROWS`)."""

    def __init__(self, libraries: list[Any], cores: int) -> None:
        self._libraries = libraries
        self._cores = cores
        self._local = threading.local()

    @classmethod
    def of_loaded_libraries(cls) -> _OpenMP | None:
        """None when no OpenMP runtime is loaded (the estimator's library brings it)."""
        from threadpoolctl import ThreadpoolController

        libraries = ThreadpoolController().select(user_api="openmp").lib_controllers
        if not libraries:
            return None
        # What OpenMP would use by itself (the libraries' own count may already be ours).
        configured = os.environ.get("OMP_NUM_THREADS", "")
        cores = int(configured) if configured.isdigit() else len(os.sched_getaffinity(0))
        return cls(libraries, cores) if cores > 1 else None

    def fit(self, rows: int) -> None:
        wanted = self._cores if rows >= fastpath.OPENMP_PARALLEL_ROWS else 1
        if getattr(self._local, "threads", None) != wanted:
            for library in self._libraries:
                library.set_num_threads(wanted)
            self._local.threads = wanted
