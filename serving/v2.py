"""Open Inference Protocol (KServe V2) REST: request parsing and response building.

Supports JSON tensors and the binary tensor extension that tritonclient uses by default, both
ways: `Inference-Header-Content-Length` and `binary_data_size` on inputs, and outputs asked
for with `binary_data` (or the request's `binary_data_output`) answered the same way.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import orjson

from serving.errors import InvalidInput, PayloadTooLarge
from serving.inputs import check_finite, json_type, parse_json
from serving.model import ServedModel

# Datatypes a client may send (all convert to float64 without loss, integers up to 2**53),
# and the numpy dtype of their binary form.
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in (
        ("FP64", "<f8"),
        ("FP32", "<f4"),
        ("FP16", "<f2"),
        ("INT64", "<i8"),
        ("INT32", "<i4"),
        ("INT16", "<i2"),
        ("INT8", "i1"),
        ("UINT64", "<u8"),
        ("UINT32", "<u4"),
        ("UINT16", "<u2"),
        ("UINT8", "u1"),
        ("BOOL", "?"),
    )
}
# The server metadata's extensions: binary tensors in both directions.
EXTENSIONS = ["binary_tensor_data"]
# What flat JSON data may hold without a closer look (bool is not int here: type(), not isinstance).
_NUMBER_TYPES = frozenset({float, int})
_FP64 = np.dtype(np.float64)
_EXACT_INT = 2**53  # float64 holds every integer up to this exactly
_OUTPUT_DTYPES = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "BOOL": "?"}


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
) -> tuple[np.ndarray, list[str], Any, frozenset[str]]:
    """Return (matrix, requested output names, request id, outputs to send as binary data)
    from an infer request. The id is any JSON value, or None when the request has none."""
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
    if model.table is not None and isinstance(inputs, list) and _per_column(inputs, model):
        matrix = column_tensors(inputs, binary, model, max_rows)
    elif not isinstance(inputs, list) or len(inputs) != 1:
        count = len(inputs) if isinstance(inputs, list) else json_type(inputs)
        want = "" if model.table is None else f" or one per column ({model.table.width})"
        raise InvalidInput(f"expected exactly one tensor in 'inputs'{want}, got {count}")
    else:
        matrix = _input_matrix(inputs[0], binary, model.n_features, max_rows)
    outputs, binary_outputs = _requested_outputs(doc, model)
    return matrix, outputs, doc.get("id"), binary_outputs


def _per_column(inputs: list[Any], model: ServedModel) -> bool:
    """One tensor per column (as MLServer's PandasCodec sends a DataFrame): more than one
    tensor, or one named after the model's only column."""
    assert model.table is not None
    if len(inputs) > 1:
        return True
    return (
        len(inputs) == 1
        and isinstance(inputs[0], dict)
        and model.table.width == 1
        and inputs[0].get("name") == model.table.names[0]
    )


def column_tensors(inputs: list[Any], binary: bytes, model: ServedModel, max_rows: int) -> Any:
    """The model's input from one tensor per column: shape [rows] or [rows, 1], BYTES for
    strings (JSON strings, or binary length-prefixed ones), numbers or booleans otherwise."""
    table = model.table
    assert table is not None
    by_name: dict[str, list[Any]] = {}
    n_rows: int | None = None
    offset = 0
    for k, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise InvalidInput(f"inputs[{k}]: expected a tensor object, got {json_type(tensor)}")
        name = tensor.get("name")
        if name not in table.index:
            raise InvalidInput(
                f"inputs[{k}]: unknown input {name!r}: send one tensor per column, named "
                f"{', '.join(table.names)}"
            )
        if name in by_name:
            raise InvalidInput(f"input {name!r} is sent more than once")
        label = f"input {name!r}"
        shape = tensor.get("shape")
        if not (
            isinstance(shape, list)
            and len(shape) in (1, 2)
            and all(type(d) is int and d >= 0 for d in shape)
            and (len(shape) == 1 or shape[1] == 1)
        ):
            raise InvalidInput(f"{label}: shape must be [rows] or [rows, 1], got {shape!r}")
        rows = shape[0]
        if rows == 0:
            raise InvalidInput(f"{label}: the input is empty: send at least one row")
        if rows > max_rows:
            raise PayloadTooLarge(f"{rows} rows is more than the limit of {max_rows} per request")
        if n_rows is not None and rows != n_rows:
            raise InvalidInput(f"{label}: has {rows} rows, the inputs before it have {n_rows}")
        n_rows = rows
        datatype = tensor.get("datatype")
        if datatype != "BYTES" and datatype not in INPUT_DATATYPES:
            raise InvalidInput(
                f"{label}: datatype must be BYTES or one of {', '.join(INPUT_DATATYPES)}, "
                f"got {datatype!r}"
            )
        params = tensor.get("parameters")
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInput(f"{label}: binary_data_size does not match the bytes sent")
            raw, offset = binary[offset : offset + size], offset + size
            if datatype == "BYTES":
                values: list[Any] = _bytes_elements(label, raw, rows)
            else:
                values = binary_matrix(label, str(datatype), raw, rows, 1).reshape(-1).tolist()
        else:
            data = tensor.get("data")
            if not isinstance(data, list):
                raise InvalidInput(f"{label}: data must be an array, got {json_type(data)}")
            values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
            if len(values) != rows:
                raise InvalidInput(f"{label}: shape needs {rows} values, data has {len(values)}")
            if datatype == "BYTES":
                values = [v.decode() if isinstance(v, bytes) else v for v in values]
        by_name[name] = values
    for name in table.names:
        if name not in by_name:
            raise InvalidInput(
                f"input {name!r} is missing: send one tensor per column, named "
                f"{', '.join(table.names)}"
            )
    assert n_rows is not None
    return table.from_columns([by_name[name] for name in table.names], n_rows)


def _bytes_elements(label: str, raw: bytes, count: int) -> list[str]:
    """BYTES binary data: each element's 4-byte little-endian length, then its bytes."""
    out = []
    at = 0
    for _ in range(count):
        if at + 4 > len(raw):
            raise InvalidInput(f"{label}: BYTES data ends before its {count} elements")
        n = int.from_bytes(raw[at : at + 4], "little")
        at += 4
        if at + n > len(raw):
            raise InvalidInput(f"{label}: BYTES data ends inside an element")
        try:
            out.append(raw[at : at + n].decode())
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: BYTES data is not UTF-8 text") from None
        at += n
    return out


def _input_matrix(tensor: Any, binary: bytes, n_features: int, max_rows: int) -> np.ndarray:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"inputs[0]: expected a tensor object, got {json_type(tensor)}")
    name = tensor.get("name", "")
    label = f"input {name!r}" if isinstance(name, str) and name else "inputs[0]"
    rows, cols = check_tensor(
        label, tensor.get("datatype"), tensor.get("shape"), n_features, max_rows
    )
    datatype = str(tensor["datatype"])  # one of INPUT_DATATYPES: check_tensor refused others
    params = tensor.get("parameters")
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or size != len(binary):
            raise InvalidInput(f"{label}: binary_data_size does not match the bytes sent")
        return binary_matrix(label, datatype, binary, rows, cols)
    # JSON numbers are finite: orjson refuses NaN, Infinity and literals that overflow.
    values = _json_values(label, datatype, tensor.get("data"), rows * cols, n_features)
    return values.reshape(rows, cols)


def check_tensor(
    label: str, datatype: Any, shape: Any, n_features: int, max_rows: int
) -> tuple[int, int]:
    """Check an input tensor's datatype and [rows, n_features] shape; return the shape."""
    if datatype not in INPUT_DATATYPES:
        raise InvalidInput(
            f"{label}: datatype must be one of {', '.join(INPUT_DATATYPES)}, got {datatype!r}"
        )
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
    return rows, cols


def binary_matrix(label: str, datatype: str, raw: bytes, rows: int, cols: int) -> np.ndarray:
    """The float64 matrix of a tensor's binary (little-endian, row-major) data."""
    dtype = INPUT_DATATYPES[datatype]
    count = rows * cols
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"{label}: shape needs {count} {datatype} values ({count * dtype.itemsize} bytes), "
            f"got {len(raw)} bytes"
        )
    flat = np.frombuffer(raw, dtype=dtype)
    if dtype.kind == "b" and flat.view(np.uint8).max(initial=0) > 1:
        raise InvalidInput(f"{label}: BOOL data must be bytes 0 or 1")
    if dtype.kind in "iu" and dtype.itemsize == 8:
        check_exact(label, flat, cols)
    matrix = flat.astype(np.float64).reshape(rows, cols)
    if dtype.kind == "f":
        check_finite(matrix)  # binary float data can hold NaN or infinity
    return matrix


def check_exact(label: str, values: np.ndarray, cols: int) -> None:
    """64-bit integers beyond 2**53 would change on the way to float64: refuse them."""
    big = (values > _EXACT_INT) | (values < -_EXACT_INT)
    if big.any():
        bad = int(np.argmax(big))
        raise InvalidInput(
            f"{label}: row {bad // cols}, feature {bad % cols}: {values[bad]} is too large "
            f"to convert to a float64 exactly (at most 2**53 in magnitude)"
        )


def _json_values(label: str, datatype: str, data: Any, count: int, n_features: int) -> np.ndarray:
    """The flat float64 values of JSON tensor data."""
    if not isinstance(data, list):
        raise InvalidInput(f"{label}: data must be an array of numbers, got {json_type(data)}")
    types = set(map(type, data))
    if datatype == "BOOL":
        return _json_bools(label, data, types, count, n_features)
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
    if datatype[0] in "IU":
        check_integers(label, datatype, values, n_features)
    return values


def check_integers(label: str, datatype: str, values: np.ndarray, cols: int) -> None:
    """Integer datatypes: whole numbers within the type's range (and exact in float64)."""
    whole = values == np.round(values)
    if not whole.all():
        bad = int(np.argmin(whole))
        raise InvalidInput(
            f"{label}: row {bad // cols}, feature {bad % cols}: {datatype} data must be integers"
        )
    info = np.iinfo(INPUT_DATATYPES[datatype])
    low, high = max(info.min, -_EXACT_INT), min(info.max, _EXACT_INT)
    outside = (values < low) | (values > high)
    if outside.any():
        bad = int(np.argmax(outside))
        raise InvalidInput(
            f"{label}: row {bad // cols}, feature {bad % cols}: {values[bad]:.0f} is outside "
            f"{datatype}'s range [{low}, {high}]"
        )


def _json_bools(
    label: str, data: list[Any], types: set[type], count: int, n_features: int
) -> np.ndarray:
    flat = data if types <= {bool} else [v for row in data for v in _row(label, row, n_features)]
    for k, value in enumerate(flat):
        if type(value) is not bool:
            raise InvalidInput(
                f"{label}: row {k // n_features}, feature {k % n_features}: "
                f"BOOL data must be true or false, got {json_type(value)}"
            )
    if len(flat) != count:
        raise InvalidInput(f"{label}: shape needs {count} values, data has {len(flat)}")
    return np.array(flat, dtype=np.float64)


def _row(label: str, row: Any, n_features: int) -> list[Any]:
    if not isinstance(row, list):
        return [row]
    if len(row) != n_features:
        raise InvalidInput(f"{label}: expected {n_features} features per row, got {len(row)}")
    return row


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


def _requested_outputs(doc: dict[str, Any], model: ServedModel) -> tuple[list[str], frozenset[str]]:
    """The outputs asked for (every output when the request names none), and those to send as
    binary data (an output's `binary_data`, or the request's `binary_data_output`)."""
    params = doc.get("parameters")
    all_binary = isinstance(params, dict) and params.get("binary_data_output") is True
    outputs = doc.get("outputs")
    if outputs is None:
        names = list(model.outputs)
        return names, frozenset(names) if all_binary else frozenset()
    if not isinstance(outputs, list) or not outputs:
        raise InvalidInput("'outputs' must be a non-empty array of {\"name\": ...} objects")
    names = []
    binary = []
    for spec in outputs:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in model.outputs:
            raise InvalidInput(
                f"unknown output {name!r}: this model offers {', '.join(model.outputs)}"
            )
        names.append(name)
        spec_params = spec.get("parameters")
        if isinstance(spec_params, dict) and "binary_data" in spec_params:
            if spec_params["binary_data"] is True:
                binary.append(name)
        elif all_binary:
            binary.append(name)
    return names, frozenset(binary)


def output_bytes(values: np.ndarray) -> tuple[str, bytes]:
    """An output's datatype and its binary form (BYTES: each element's length, then it)."""
    datatype = output_datatype(values)
    flat = values.reshape(-1)
    if datatype == "BYTES":
        parts = []
        for value in flat.tolist():
            raw = str(value).encode()
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return datatype, b"".join(parts)
    return datatype, np.ascontiguousarray(flat, dtype=_OUTPUT_DTYPES[datatype]).tobytes()


def binary_infer_response(
    model: ServedModel, results: dict[str, np.ndarray], request_id: Any, binary: frozenset[str]
) -> tuple[bytes, int]:
    """An infer response whose `binary` outputs follow the JSON as raw bytes; returns the body
    and the JSON's length (the Inference-Header-Content-Length)."""
    outputs = []
    chunks = []
    for name, values in results.items():
        if name not in binary:
            outputs.append(_json_output(name, values))
            continue
        datatype, raw = output_bytes(values)
        outputs.append(
            {
                "name": name,
                "shape": list(values.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    head = orjson.dumps(_response_doc(model, outputs, request_id), option=_NUMPY)
    return head + b"".join(chunks), len(head)


_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json_output(name: str, values: np.ndarray) -> dict[str, Any]:
    if values.dtype.kind in "OUS":
        data: Any = [str(v) for v in values.reshape(-1).tolist()]
    else:
        data = np.ascontiguousarray(values.reshape(-1))
    return {
        "name": name,
        "shape": list(values.shape),
        "datatype": output_datatype(values),
        "data": data,
    }


def _response_doc(
    model: ServedModel, outputs: list[dict[str, Any]], request_id: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"model_name": model.name}
    if model.cfg.version:
        doc["model_version"] = model.cfg.version
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = outputs
    return doc


def infer_response(model: ServedModel, results: dict[str, np.ndarray], request_id: Any) -> bytes:
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
    outputs = [_json_output(name, values) for name, values in results.items()]
    return orjson.dumps(_response_doc(model, outputs, request_id), option=_NUMPY)


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
        elif name == "decision_function":
            n = len(model.classes or [])
            shape = [-1] if n <= 2 else [-1, n]
            datatype = "FP64"
        elif model.classes is not None:
            shape = [-1]
            datatype = output_datatype(np.asarray(model.classes))
        else:
            shape = [-1]
            datatype = "FP64"
        outputs.append({"name": name, "datatype": datatype, "shape": shape})
    inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features]}]
    if model.table is not None and model.cfg.input_schema is not None:
        # One tensor per column is what a schema-aware client sends (the matrix still works).
        inputs = [
            {"name": c.name, "datatype": _COLUMN_DATATYPES.get(c.type, "BYTES"), "shape": [-1, 1]}
            for c in model.table.columns
        ]
    return {
        "name": model.name,
        "versions": [model.cfg.version] if model.cfg.version else [],
        "platform": "sklearn",
        "inputs": inputs,
        "outputs": outputs,
    }


_COLUMN_DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}
