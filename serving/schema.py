"""Learning a version's input schema: from the fitted estimator and from a sample CSV.

The validation sandbox calls `learn_schema` on the loaded artifact: the column names come from
`feature_names_in_` (or the sample's header), the types from the sample's cells, the categories
from the encoders inside a ColumnTransformer (or a Pipeline's first step), and whether a column
takes a missing value from trying it: the probe row with that one cell missing is predicted
with scikit-learn's own input checks on, so only a model that really accepts NaN there
(imputers, HistGradientBoosting, XGBoost, LightGBM) gets a nullable column.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from serving.config import MAX_SAMPLE_ROWS, Column
from serving.errors import InvalidInput
from serving.tabular import Table

# Rows of a sample read to infer the columns' types (the sample may hold more).
TYPE_ROWS = 10_000
# Columns beyond this are not probed for missing values one by one (each probe is a prediction).
MAX_PROBED_COLUMNS = 200
_TRUE, _FALSE = {"true"}, {"false"}


class SampleError(ValueError):
    """The sample CSV cannot be read or does not fit the model; the message says how."""


def read_sample(text: str, max_rows: int = TYPE_ROWS) -> tuple[list[str], list[list[str]]]:
    """The header and up to `max_rows` rows of cells of a CSV text."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise SampleError("the sample CSV is empty: its first line must name the columns") from None
    except csv.Error as exc:
        raise SampleError(f"the sample CSV cannot be read: {exc}") from None
    header = [name.strip() for name in header]
    if not all(header):
        raise SampleError("the sample CSV's header has an empty column name")
    if len(set(header)) != len(header):
        raise SampleError("the sample CSV's header names a column more than once")
    rows: list[list[str]] = []
    try:
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise SampleError(
                    f"the sample CSV's line {line} has {len(cells)} cells, the header {len(header)}"
                )
            rows.append(cells)
            if len(rows) >= max_rows:
                break
    except csv.Error as exc:
        raise SampleError(f"the sample CSV cannot be read: {exc}") from None
    if not rows:
        raise SampleError("the sample CSV has a header but no rows: add a few real rows")
    return header, rows


def _cell_type(cells: list[str]) -> str:
    present = [c.strip() for c in cells if c.strip()]
    if not present:
        return "number"
    if all(c.lower() in _TRUE | _FALSE for c in present):
        return "boolean"
    try:
        for c in present:
            int(c)
        return "integer"
    except ValueError:
        pass
    try:
        for c in present:
            float(c)
        return "number"
    except ValueError:
        return "string"


def sample_columns(header: list[str], rows: list[list[str]]) -> list[Column]:
    """Each sample column's type from its cells; an empty cell makes it nullable."""
    columns = []
    for j, name in enumerate(header):
        cells = [row[j] for row in rows]
        columns.append(
            Column(name=name, type=_cell_type(cells), nullable=any(not c.strip() for c in cells))
        )
    return columns


def typed_rows(
    columns: list[Column], header: list[str], rows: list[list[str]]
) -> list[dict[str, Any]]:
    """Sample rows as JSON-ready objects keyed by column, values typed by the schema
    (an empty cell is None). A cell that does not fit its column raises SampleError."""
    at = {name: j for j, name in enumerate(header)}
    out = []
    for i, row in enumerate(rows):
        record: dict[str, Any] = {}
        for column in columns:
            cell = row[at[column.name]]
            try:
                record[column.name] = _typed(column, cell)
            except ValueError:
                raise SampleError(
                    f"the sample CSV's row {i + 1}, column {column.name!r}: {cell!r} is not "
                    f"{'a number' if column.type != 'boolean' else 'true or false'}"
                ) from None
        out.append(record)
    return out


def _typed(column: Column, cell: str) -> Any:
    text = cell.strip()
    if not text:
        return None
    kind = column.type
    if kind == "category":
        numbers = all(type(c) in (int, float) for c in column.categories or [])
        if not numbers:
            return cell
        value = float(text)
        return int(value) if value.is_integer() else value
    if kind == "string":
        return cell
    if kind == "boolean":
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(text)
        return text.lower() in _TRUE
    if kind == "integer":
        return int(float(text))
    return float(text)


def learn_schema(
    estimator: Any, header: list[str] | None, rows: list[list[str]] | None
) -> tuple[list[Column] | None, list[dict[str, Any]]]:
    """The input schema and the typed sample rows (at most MAX_SAMPLE_ROWS), or (None, [])
    when neither the artifact nor a sample names the columns."""
    fitted = getattr(estimator, "feature_names_in_", None)
    names = [str(n) for n in np.asarray(fitted).tolist()] if fitted is not None else None
    from_sample = sample_columns(header, rows) if header is not None and rows else None
    if names is None:
        if from_sample is None:
            return None, []
        names = [c.name for c in from_sample]
    if from_sample is not None:
        missing = [n for n in names if n not in header]  # type: ignore[operator]
        extra = [n for n in header or [] if n not in names]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"misses column(s) {', '.join(missing)}")
            if extra:
                problems.append(f"has column(s) the model was not fitted on: {', '.join(extra)}")
            raise SampleError(
                f"the sample CSV {' and '.join(problems)} (the model takes {', '.join(names)})"
            )
    by_name = {c.name: c for c in from_sample or []}
    columns = [by_name.get(name, Column(name=name)) for name in names]
    for index, encoder, k in _encoders(estimator, len(names)):
        categories = [v for v in _plain(encoder.categories_[k]) if not _is_nan(v)]
        column = columns[index]
        refuses = getattr(encoder, "handle_unknown", "error") == "error"
        if refuses and categories:
            columns[index] = column.model_copy(
                update={"type": "category", "categories": categories}
            )
        elif all(isinstance(c, str) for c in categories) and column.type != "string":
            columns[index] = column.model_copy(update={"type": "string"})
    sample = typed_rows(columns, header, rows[:MAX_SAMPLE_ROWS]) if header and rows else []
    columns = _probe_missing(estimator, columns, sample)
    return columns, sample


def _encoders(estimator: Any, width: int) -> list[tuple[int, Any, int]]:
    """(input column index, encoder, index in the encoder's categories_) of every column an
    encoder with categories_ reads: inside a ColumnTransformer, or as a Pipeline's first step."""
    first = estimator
    while hasattr(first, "steps") and first.steps:
        first = first.steps[0][1]
    found: list[tuple[int, Any, int]] = []
    if hasattr(first, "categories_"):
        return [(k, first, k) for k in range(min(width, len(first.categories_)))]
    indices = getattr(first, "_transformer_to_input_indices", None)
    for name, transformer, _ in getattr(first, "transformers_", []):
        encoder = _encoder_in(transformer)
        if encoder is None or not isinstance(indices, dict) or name not in indices:
            continue
        for k, index in enumerate(np.asarray(indices[name]).tolist()):
            if k < len(encoder.categories_) and index < width:
                found.append((int(index), encoder, k))
    return found


def _encoder_in(transformer: Any) -> Any:
    if hasattr(transformer, "categories_"):
        return transformer
    for _, step in getattr(transformer, "steps", []):
        if hasattr(step, "categories_"):
            return step
        if hasattr(step, "transform") and not _keeps_columns(step):
            return None  # a step that reshapes the columns before the encoder: unknown
    return None


def _keeps_columns(step: Any) -> bool:
    return type(step).__name__ in {"SimpleImputer", "FunctionTransformer", "StandardScaler"}


def _plain(values: Any) -> list[Any]:
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in out]


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _probe_missing(
    estimator: Any, columns: list[Column], sample: list[dict[str, Any]]
) -> list[Column]:
    """Mark the columns where the model takes a missing value (predicting one row with that
    cell missing, with scikit-learn's input checks on, gives finite answers)."""
    if len(columns) > MAX_PROBED_COLUMNS:
        return columns
    table = Table(columns)
    row = dict(sample[0]) if sample else table.example_row()
    if not _predicts(estimator, table, [row]):
        return columns  # the probe row itself fails: the warm-up will say why
    probed = []
    for column in columns:
        if column.nullable:
            probed.append(column)
            continue
        trial = Table([c.model_copy(update={"nullable": c is column}) for c in columns])
        takes = _predicts(estimator, trial, [{**row, column.name: None}])
        probed.append(column.model_copy(update={"nullable": takes}))
    return probed


def _predicts(estimator: Any, table: Table, rows: list[dict[str, Any]]) -> bool:
    try:
        features = table.from_rows(rows, len(rows))
        if isinstance(features, np.ndarray) and hasattr(estimator, "feature_names_in_"):
            from serving.tabular import frame_of

            features = frame_of(features, table.names)
        result = np.asarray(estimator.predict(features))
    except InvalidInput:
        return False
    except Exception:  # the model refused the row: that is the answer sought
        return False
    return not (result.dtype.kind == "f" and not np.isfinite(result).all())
