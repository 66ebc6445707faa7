"""Turn request bodies into validated float64 feature matrices.

The fast path lets numpy build the matrix in C; only when that fails or looks wrong do we walk
the rows in Python to say exactly which row and which feature is at fault.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidInput, PayloadTooLarge

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _JSON_TYPES.get(type(value), type(value).__name__)
    return "a number"


def parse_json(body: bytes) -> Any:
    """Parse a JSON body (NaN and Infinity literals are not JSON and are refused here)."""
    if not body:
        raise InvalidInput("the request body is empty: send a JSON matrix of numbers")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


def predict_rows(doc: Any) -> Any:
    """The rows of a /predict body: a bare matrix or {"instances": matrix}."""
    if isinstance(doc, dict):
        if "instances" not in doc:
            raise InvalidInput('expected a matrix of numbers or {"instances": [[...], ...]}')
        return doc["instances"]
    return doc


def to_matrix(rows: Any, n_features: int, max_rows: int, maybe_bool: bool = True) -> np.ndarray:
    """Validate rows of numbers into an (n, n_features) float64 array.

    maybe_bool=False lets a caller that has scanned the raw body skip the per-value bool check.
    """
    if not isinstance(rows, list):
        raise InvalidInput(f"expected a matrix (an array of rows), got {json_type(rows)}")
    if not rows:
        raise InvalidInput("the input is empty: send at least one row")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"{len(rows)} rows is more than the limit of {max_rows} per request")
    try:
        matrix = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        matrix = None
    if (
        matrix is None
        or matrix.dtype.kind not in "iuf"
        or matrix.shape != (len(rows), n_features)
        or (maybe_bool and _has_bool(rows))
    ):
        matrix = _explain_rows(rows, n_features)
    # No finiteness check: orjson refuses NaN, Infinity and literals that overflow a double.
    return matrix.astype(np.float64, copy=False)


def _has_bool(rows: list[Any]) -> bool:
    return any(bool in set(map(type, row)) for row in rows)


def _explain_rows(rows: list[Any], n_features: int) -> np.ndarray:
    """Find the first bad row and raise naming it; return the matrix if nothing is wrong."""
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(
                f"row {i}: expected an array of {n_features} numbers, got {json_type(row)}"
            )
        if len(row) != n_features:
            raise InvalidInput(f"row {i}: expected {n_features} features, got {len(row)}")
        for j, value in enumerate(row):
            _check_value(value, f"row {i}, feature {j}")
    try:
        return np.array(rows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"the rows are not a matrix of numbers: {exc}") from None


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: expected a number, got {json_type(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise InvalidInput(f"{where}: the value is not finite (NaN or infinity is not allowed)")


def check_finite(matrix: np.ndarray) -> None:
    if matrix.size and not np.isfinite(matrix).all():
        bad = np.argwhere(~np.isfinite(matrix))[0]
        raise InvalidInput(
            f"row {bad[0]}, feature {bad[1]}: the value is not finite "
            "(NaN or infinity is not allowed)"
        )
