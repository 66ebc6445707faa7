"""Tabular requests: rows as objects, MLflow's DataFrame forms and one tensor per column,
checked against the version's input schema and built into what the model was fitted on.

The forms /predict (and KServe V1) accept besides the matrix of numbers:
- rows as objects `[{"age": 31, "city": "paris"}]`, bare or under `instances`;
- MLflow's `{"dataframe_split": {"columns": [...], "data": [[...]]}}` and
  `{"dataframe_records": [{...}]}`;
and the Open Inference Protocol's one tensor per column (serving/v2.py). JSON null is a
missing value (NaN) where the column is nullable.

What the model gets: when every column is numeric, a float64 matrix (the numeric fast path
of serving/fastpath.py still applies, and the model wraps it in a DataFrame with the column
names if it was fitted on one); otherwise a pandas DataFrame with the columns in the fitted
order, numbers as float64 (int64 for integer columns without missing values) and strings as
objects. Every refusal names the row, the column and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.config import Column
from serving.errors import InvalidInput, PayloadTooLarge
from serving.inputs import json_type, to_matrix

if TYPE_CHECKING:
    import pandas as pd

NUMERIC_TYPES = frozenset({"number", "integer", "boolean"})
_NUMBERS = frozenset({int, float})
_SHOWN_CATEGORIES = 20  # at most this many categories are listed in an error


def _is_numeric(column: Column) -> bool:
    if column.type in NUMERIC_TYPES:
        return True
    return column.type == "category" and all(type(c) in _NUMBERS for c in column.categories or [])


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json_type(value)


class Table:
    """An input schema and how to turn request rows into the model's input."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.names = [column.name for column in self.columns]
        self.index = {name: i for i, name in enumerate(self.names)}
        # All numeric: requests become a float64 matrix, as the matrix of numbers does.
        self.numeric = all(_is_numeric(column) for column in self.columns)
        self._category_sets = {
            column.name: frozenset((type(c), c) for c in column.categories or [])
            for column in self.columns
            if column.type == "category"
        }

    @property
    def width(self) -> int:
        return len(self.columns)

    def _taken(self) -> str:
        names = ", ".join(self.names[:_SHOWN_CATEGORIES])
        more = (
            f" and {self.width - _SHOWN_CATEGORIES} more" if self.width > _SHOWN_CATEGORIES else ""
        )
        return f"the model takes the columns {names}{more}"

    # --- request forms -------------------------------------------------------------------------

    def parse(self, doc: Any, max_rows: int, maybe_bool: bool = True) -> Any:
        """The model's input from a /predict body in any of the accepted forms."""
        if isinstance(doc, dict):
            if "dataframe_split" in doc:
                return self._split(doc["dataframe_split"], max_rows)
            if "dataframe_records" in doc:
                return self.from_rows(doc["dataframe_records"], max_rows, maybe_bool)
            if "instances" in doc:
                return self.from_rows(doc["instances"], max_rows, maybe_bool)
            raise InvalidInput(
                "expected rows (an array of objects keyed by column, or of arrays of values), "
                '{"instances": rows}, {"dataframe_split": {"columns", "data"}} or '
                '{"dataframe_records": rows}'
            )
        return self.from_rows(doc, max_rows, maybe_bool)

    def from_rows(self, rows: Any, max_rows: int, maybe_bool: bool = True) -> Any:
        """Rows as objects keyed by column, or as arrays of values in the schema's order."""
        if not isinstance(rows, list):
            raise InvalidInput(f"expected an array of rows, got {json_type(rows)}")
        if not rows:
            raise InvalidInput("the input is empty: send at least one row")
        if len(rows) > max_rows:
            raise PayloadTooLarge(
                f"{len(rows)} rows is more than the limit of {max_rows} per request"
            )
        if isinstance(rows[0], dict):
            return self.from_columns(self._record_columns(rows), len(rows))
        if self.numeric:
            try:  # the matrix of numbers, at the speed it has without a schema
                return to_matrix(rows, self.width, max_rows, maybe_bool=maybe_bool)
            except InvalidInput:
                pass  # nulls in nullable columns, or an error to explain by column name
        return self.from_columns(self._positional_columns(rows), len(rows))

    def _record_columns(self, rows: list[Any]) -> list[list[Any]]:
        expected = self.index
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidInput(
                    f"row {i}: expected an object keyed by column like row 0, got {json_type(row)}"
                )
            if len(row) != self.width or not all(key in expected for key in row):
                self._wrong_keys(i, row)
        return [[row[name] for row in rows] for name in self.names]

    def _wrong_keys(self, i: int, row: dict[str, Any]) -> None:
        for name in self.names:
            if name not in row:
                raise InvalidInput(f"row {i}: column {name!r} is missing ({self._taken()})")
        extra = next(key for key in row if key not in self.index)
        raise InvalidInput(f"row {i}: unknown column {extra!r} ({self._taken()})")

    def _positional_columns(self, rows: list[Any]) -> list[list[Any]]:
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                raise InvalidInput(
                    f"row {i}: expected an array of {self.width} values or an object keyed "
                    f"by column, got {json_type(row)}"
                )
            if len(row) != self.width:
                raise InvalidInput(
                    f"row {i}: expected {self.width} values ({self._taken()}), got {len(row)}"
                )
        return [list(values) for values in zip(*rows, strict=True)]

    def _split(self, split: Any, max_rows: int) -> Any:
        if not isinstance(split, dict):
            raise InvalidInput(
                f'dataframe_split: expected {{"columns": [...], "data": [[...]]}}, got '
                f"{json_type(split)}"
            )
        columns, data = split.get("columns"), split.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("dataframe_split.columns: expected an array of column names")
        for name in self.names:
            if name not in columns:
                raise InvalidInput(f"dataframe_split: column {name!r} is missing ({self._taken()})")
        for name in columns:
            if name not in self.index:
                raise InvalidInput(f"dataframe_split: unknown column {name!r} ({self._taken()})")
        if len(set(columns)) != len(columns):
            raise InvalidInput("dataframe_split.columns: a column is named more than once")
        if not isinstance(data, list) or not data:
            raise InvalidInput("dataframe_split.data: expected a non-empty array of rows")
        if len(data) > max_rows:
            raise PayloadTooLarge(
                f"{len(data)} rows is more than the limit of {max_rows} per request"
            )
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                got = len(row) if isinstance(row, list) else json_type(row)
                raise InvalidInput(
                    f"dataframe_split.data row {i}: expected {len(columns)} values, got {got}"
                )
        by_name = dict(zip(columns, zip(*data, strict=True), strict=True))
        return self.from_columns([list(by_name[name]) for name in self.names], len(data))

    # --- building the model's input --------------------------------------------------------------

    def from_columns(self, values: list[list[Any]], n_rows: int) -> Any:
        """Check each column's values against its type; the matrix or DataFrame the model takes.

        `values` holds one list per schema column, in schema order, of JSON values.
        """
        arrays = [
            self._column(column, column_values)
            for column, column_values in zip(self.columns, values, strict=True)
        ]
        if self.numeric:
            matrix = np.empty((n_rows, self.width), dtype=np.float64)
            for j, array in enumerate(arrays):
                matrix[:, j] = array
            return matrix
        import pandas as pd

        return pd.DataFrame(dict(zip(self.names, arrays, strict=True)), copy=False)

    def _column(self, column: Column, values: list[Any]) -> np.ndarray:
        kind = column.type
        types = set(map(type, values))
        if kind == "number" and types <= _NUMBERS:  # the common case: one conversion in C
            try:
                return np.array(values, dtype=np.float64)
            except OverflowError:
                pass
        if kind == "string" and types <= {str}:
            return np.array(values, dtype=object)
        checked = [self._value(column, i, value) for i, value in enumerate(values)]
        if kind in ("number", "integer", "boolean") or _is_numeric(column):
            as_float = np.array([math.nan if v is None else v for v in checked], dtype=np.float64)
            if kind == "integer" and not self.numeric and None not in checked:
                return as_float.astype(np.int64)
            return as_float
        return np.array([math.nan if v is None else v for v in checked], dtype=object)

    def _value(self, column: Column, i: int, value: Any) -> Any:
        """The value if it fits the column (None for a missing one), else InvalidInput."""
        where = f"row {i}, column {column.name!r}"
        kind = column.type
        if value is None:
            if column.nullable:
                return None
            raise InvalidInput(
                f"{where}: null (a missing value) is not accepted: the model cannot take "
                f"missing values in this column; send {_NOUN[kind]}"
            )
        if kind == "category":
            if (type(value), value) in self._category_sets[column.name] or (
                type(value) in _NUMBERS
                and any(type(c) in _NUMBERS and c == value for c in column.categories or [])
            ):
                return value
            shown = ", ".join(repr(c) for c in (column.categories or [])[:_SHOWN_CATEGORIES])
            more = len(column.categories or []) - _SHOWN_CATEGORIES
            tail = f" and {more} more" if more > 0 else ""
            raise InvalidInput(
                f"{where}: {_show(value)} is not one of the categories the model's encoder "
                f"knows (it refuses unknown ones): expected one of {shown}{tail}"
            )
        if kind == "string":
            if isinstance(value, str):
                return value
        elif kind == "boolean":
            if isinstance(value, bool):
                return value
        elif not isinstance(value, bool) and isinstance(value, int | float):
            if not math.isfinite(value):
                raise InvalidInput(f"{where}: the value is not finite")
            if kind == "number":
                return value
            if float(value).is_integer():
                return value
            raise InvalidInput(f"{where}: expected an integer, got {value!r}")
        raise InvalidInput(f"{where}: expected {_NOUN[kind]}, got {json_type(value)}")

    # --- rows the model is known to take -------------------------------------------------------

    def example_row(self) -> dict[str, Any]:
        """A row that fits the schema (first categories, zeros, empty strings): the warm-up's
        row when the version has no sample."""
        row: dict[str, Any] = {}
        for column in self.columns:
            if column.type == "category":
                row[column.name] = column.categories[0] if column.categories else None
            elif column.type == "string":
                row[column.name] = ""
            elif column.type == "boolean":
                row[column.name] = False
            else:
                row[column.name] = 0
        return row


_NOUN = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "category": "one of its categories",
}


def frame_of(matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    """A float64 matrix as the DataFrame a model fitted on named columns expects."""
    import pandas as pd

    return pd.DataFrame(matrix, columns=names, copy=False)


def concat(parts: list[Any]) -> Any:
    """Rows of several requests as one model input (matrices or DataFrames alike)."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=0)
    import pandas as pd

    return pd.concat(parts, axis=0, ignore_index=True)


def rows_of(features: Any) -> int:
    return int(features.shape[0])
