"""OpenAPI entries for the prediction routes, which are plain Starlette routes.

The hot routes skip FastAPI's per-request dependency machinery (about 40 us of a ~150 us
request), so FastAPI cannot describe them; this module does, with the served
model's name, feature count and limits, so clients and the fuzzing tests see exact schemas.
"""

from __future__ import annotations

from typing import Any

from serving.config import ServingConfig
from serving.model import ServedModel
from serving.v2 import INPUT_DATATYPES

JSON = "application/json"

_ERROR = {
    "content": {JSON: {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input (the KServe protocols' status for it)", **_ERROR},
    404: {"description": "Unknown model or version", **_ERROR},
    413: {"description": "Too many rows or too large a body", **_ERROR},
    422: {"description": "Invalid input: the message names the row and the problem", **_ERROR},
    503: {"description": "The model is not ready", **_ERROR},
}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": {"description": "Successful Response", **ok}}
    answers.update({str(code): ERRORS[code] for code in codes})
    return answers


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def matrix_schema(cfg: ServingConfig) -> dict[str, Any]:
    row = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": cfg.input_size,
        "maxItems": cfg.input_size,
    }
    return {"type": "array", "items": row, "minItems": 1, "maxItems": cfg.max_batch_rows}


def infer_request_schema(cfg: ServingConfig) -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": cfg.max_batch_rows},
                "minItems": 2,
                "maxItems": 2,
            },
            "datatype": {"enum": list(INPUT_DATATYPES)},
            "data": {"type": "array", "items": {"type": "number"}},
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"description": "Any JSON value; the response echoes it"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
    }


def prediction_paths(cfg: ServingConfig, model: ServedModel) -> dict[str, Any]:
    """Path items for POST /predict and the two infer routes."""
    matrix = matrix_schema(cfg)
    predict_body = {
        "oneOf": [
            matrix,
            {"type": "object", "required": ["instances"], "properties": {"instances": matrix}},
        ]
    }
    if model.classes is not None:
        predictions: dict[str, Any] = {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}},
        }
        answer = {"type": "object", "properties": {"predictions": predictions, "classes": {}}}
    else:
        answer = {"type": "object", "properties": {"predictions": {"type": "array"}}}

    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(dict.fromkeys((model.name, cfg.name)))},
    }
    version_schema: dict[str, Any] = {"type": "string"}
    if cfg.version:
        version_schema["enum"] = [cfg.version]
    version = {"name": "version", "in": "path", "required": True, "schema": version_schema}
    infer_answer = {
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "properties": {"model_name": {"type": "string"}, "outputs": {"type": "array"}},
                }
            }
        }
    }

    def infer(parameters: list[dict[str, Any]], summary: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "operationId": summary.lower().replace(" ", "_"),
                "parameters": parameters,
                "requestBody": _body(infer_request_schema(cfg)),
                "responses": _responses(infer_answer, 400, 404, 413, 503),
            }
        }

    return {
        "/predict": {
            "post": {
                "summary": "Predict",
                "description": "Class probabilities for classification, values for regression.",
                "operationId": "predict",
                "requestBody": _body(predict_body),
                "responses": _responses({"content": {JSON: {"schema": answer}}}, 413, 422, 503),
            }
        },
        "/v1/models/{name}:predict": {
            "post": {
                "summary": "KServe V1 predict",
                "description": "The same answer as /predict, for the model named in the URL.",
                "operationId": "v1_predict",
                "parameters": [name],
                "requestBody": _body(predict_body),
                "responses": _responses(
                    {"content": {JSON: {"schema": answer}}}, 400, 404, 413, 503
                ),
            }
        },
        "/v2/models/{name}/infer": infer([name], "Model infer"),
        "/v2/models/{name}/versions/{version}/infer": infer([name, version], "Model version infer"),
    }
