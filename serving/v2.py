"""Open Inference Protocol (KServe V2) REST: request parsing and response building.

Supports JSON tensors and the binary tensor extension that tritonclient uses by default
(`Inference-Header-Content-Length` header, `binary_data_size` input parameter).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidInput, PayloadTooLarge
from serving.inputs import check_finite, json_type, parse_json
from serving.model import ServedModel

# Datatypes a client may send, and the numpy dtype of their binary form.
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP64": np.dtype("<f8"),
    "FP32": np.dtype("<f4"),
    "INT64": np.dtype("<i8"),
    "INT32": np.dtype("<i4"),
}
# What flat JSON data may hold without a closer look (bool is not int here: type(), not isinstance).
_NUMBER_TYPES = frozenset({float, int})
_FP64 = np.dtype(np.float64)


def output_datatype(values: np.ndarray) -> str:
    """The V2 datatype naming a result array (class labels may be strings or booleans)."""
    kind = values.dtype.kind
    if kind == "f":
        return "FP64" if values.dtype.itemsize == 8 else "FP32"
    if kind in "iu":
        return "INT64"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def parse_infer_request(
    body: bytes, header_length: str | None, model: ServedModel, max_rows: int
) -> tuple[np.ndarray, list[str], str | None]:
    """Return (matrix, requested output names, request id) from an infer request."""
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise InvalidInput("Inference-Header-Content-Length must be an integer") from None
        if not 0 <= n <= len(body):
            raise InvalidInput("Inference-Header-Content-Length is larger than the body")
        body, binary = body[:n], body[n:]
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput(f"expected an infer request object, got {json_type(doc)}")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        count = len(inputs) if isinstance(inputs, list) else json_type(inputs)
        raise InvalidInput(f"expected exactly one tensor in 'inputs', got {count}")
    matrix = _input_matrix(inputs[0], binary, model.n_features, max_rows)
    outputs = _requested_outputs(doc.get("outputs"), model)
    request_id = doc.get("id")
    return matrix, outputs, request_id if isinstance(request_id, str) else None


def _input_matrix(tensor: Any, binary: bytes, n_features: int, max_rows: int) -> np.ndarray:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"inputs[0]: expected a tensor object, got {json_type(tensor)}")
    name = tensor.get("name", "")
    label = f"input {name!r}" if isinstance(name, str) and name else "inputs[0]"
    datatype = tensor.get("datatype")
    if datatype not in INPUT_DATATYPES:
        raise InvalidInput(
            f"{label}: datatype must be one of {', '.join(INPUT_DATATYPES)}, got {datatype!r}"
        )
    shape = tensor.get("shape")
    # type() is int, not isinstance: a JSON true is a bool, which isinstance counts as an int.
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and type(shape[0]) is int
        and type(shape[1]) is int
        and shape[0] >= 0
        and shape[1] >= 0
    ):
        raise InvalidInput(f"{label}: shape must be [rows, {n_features}], got {shape!r}")
    rows, cols = shape
    if cols != n_features:
        raise InvalidInput(f"{label}: expected {n_features} features per row, shape says {cols}")
    if rows == 0:
        raise InvalidInput(f"{label}: the input is empty: send at least one row")
    if rows > max_rows:
        raise PayloadTooLarge(f"{rows} rows is more than the limit of {max_rows} per request")
    count = rows * cols
    params = tensor.get("parameters")
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        flat = _binary_values(label, datatype, size, binary, count)
        matrix = flat.astype(np.float64).reshape(rows, cols)
        check_finite(matrix)  # binary FP64/FP32 data can hold NaN or infinity
        return matrix
    # JSON numbers are finite: orjson refuses NaN, Infinity and literals that overflow.
    return _json_values(label, datatype, tensor.get("data"), count, n_features).reshape(rows, cols)


def _binary_values(label: str, datatype: str, size: Any, binary: bytes, count: int) -> np.ndarray:
    dtype = INPUT_DATATYPES[datatype]
    if not isinstance(size, int) or size != len(binary):
        raise InvalidInput(f"{label}: binary_data_size does not match the bytes sent")
    if size != count * dtype.itemsize:
        raise InvalidInput(
            f"{label}: shape needs {count} {datatype} values ({count * dtype.itemsize} bytes), "
            f"got {size} bytes"
        )
    return np.frombuffer(binary, dtype=dtype)


def _json_values(label: str, datatype: str, data: Any, count: int, n_features: int) -> np.ndarray:
    """The flat float64 values of JSON tensor data."""
    if not isinstance(data, list):
        raise InvalidInput(f"{label}: data must be an array of numbers, got {json_type(data)}")
    types = set(map(type, data))
    values = None
    if types <= _NUMBER_TYPES:  # flat numbers: the common case, one conversion in C
        try:
            values = np.array(data, dtype=np.float64)
        except OverflowError:  # an integer beyond float64's range
            values = None
    if values is None:
        values = _explain_values(label, data, n_features)
    if values.size != count:
        raise InvalidInput(f"{label}: shape needs {count} values, data has {values.size}")
    if datatype.startswith("INT") and types != {int}:
        whole = values == np.round(values)
        if not whole.all():
            bad = int(np.argmin(whole))
            raise InvalidInput(
                f"{label}: row {bad // n_features}, feature {bad % n_features}: "
                f"{datatype} data must be integers"
            )
    return values


def _explain_values(label: str, data: list[Any], n_features: int) -> np.ndarray:
    """Accept flat or row-nested data; name the first bad value's row and feature."""
    flat: list[Any] = []
    for i, value in enumerate(data):
        if isinstance(value, list):
            if len(value) != n_features:
                raise InvalidInput(
                    f"{label}: row {i}: expected {n_features} features, got {len(value)}"
                )
            flat.extend(value)
        else:
            flat.append(value)
    for k, value in enumerate(flat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"{label}: row {k // n_features}, feature {k % n_features}: "
                f"expected a number, got {json_type(value)}"
            )
    try:
        return np.array(flat, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{label}: data is not an array of numbers: {exc}") from None


def _requested_outputs(outputs: Any, model: ServedModel) -> list[str]:
    if outputs is None:
        return [model.primary_output]
    if not isinstance(outputs, list) or not outputs:
        raise InvalidInput("'outputs' must be a non-empty array of {\"name\": ...} objects")
    names = []
    for spec in outputs:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in model.outputs:
            raise InvalidInput(
                f"unknown output {name!r}: this model offers {', '.join(model.outputs)}"
            )
        names.append(name)
    return names


def infer_response(
    model: ServedModel, results: dict[str, np.ndarray], request_id: str | None
) -> bytes:
    """Render an infer response with one JSON tensor per requested output."""
    if request_id is None and len(results) == 1:
        ((name, values),) = results.items()
        if values.dtype is _FP64 and values.ndim <= 2:
            # The common response, around pre-rendered JSON: half the time of the general one.
            return b"".join(
                (
                    _response_head(model.name, model.cfg.version, name),
                    b"%d,%d" % values.shape if values.ndim == 2 else b"%d" % values.shape[0],
                    b'],"datatype":"FP64","data":',
                    orjson.dumps(values.ravel().tolist()),
                    b"}]}",
                )
            )
    outputs = []
    for name, values in results.items():
        if values.dtype.kind in "OUS":
            data: Any = [str(v) for v in values.reshape(-1).tolist()]
        else:
            data = np.ascontiguousarray(values.reshape(-1))
        outputs.append(
            {
                "name": name,
                "shape": list(values.shape),
                "datatype": output_datatype(values),
                "data": data,
            }
        )
    doc: dict[str, Any] = {"model_name": model.name, "outputs": outputs}
    if model.cfg.version:
        doc["model_version"] = model.cfg.version
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


@functools.cache
def _response_head(model_name: str, version: str | None, output: str) -> bytes:
    """`{"model_name":...,"outputs":[{"name":...,"shape":[`, the start of infer_response's."""
    doc: dict[str, Any] = {"model_name": model_name}
    if version:
        doc["model_version"] = version
    return orjson.dumps(doc)[:-1] + b',"outputs":[{"name":' + orjson.dumps(output) + b',"shape":['


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """GET /v2/models/{name}: inputs and outputs with their shapes and datatypes."""
    outputs = []
    for name in model.outputs:
        if name == "predict_proba":
            shape = [-1, len(model.classes or [])]
            datatype = "FP64"
        elif model.classes is not None:
            shape = [-1]
            datatype = output_datatype(np.asarray(model.classes))
        else:
            shape = [-1]
            datatype = "FP64"
        outputs.append({"name": name, "datatype": datatype, "shape": shape})
    return {
        "name": model.name,
        "versions": [model.cfg.version] if model.cfg.version else [],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features]}],
        "outputs": outputs,
    }
