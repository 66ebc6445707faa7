"""The FastAPI app: thin protocol adapters over one ServedModel and its MicroBatcher.

Bodies are read and parsed here with orjson + numpy and answered with pre-rendered JSON:
FastAPI's pydantic body path costs more than the model itself (DESIGN.md 6). The OpenAPI
document still describes every body, through `openapi_extra`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Path, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from serving import v2
from serving.batching import MicroBatcher
from serving.config import ServingConfig
from serving.errors import ModelNotFound, ModelNotReady, PayloadTooLarge, register_error_handlers
from serving.inputs import parse_json, predict_rows, to_matrix
from serving.metrics import AccessLogMiddleware, Metrics
from serving.model import ServedModel

log = logging.getLogger("serving")

JSON = "application/json"


class State:
    """What the handlers share: the model, its batcher, metrics, and readiness."""

    def __init__(self, cfg: ServingConfig, model: ServedModel, metrics: Metrics) -> None:
        self.cfg = cfg
        self.model = model
        self.metrics = metrics
        self.ready = False
        batching = cfg.batching
        self.batcher = MicroBatcher(
            model.run,
            enabled=batching.enabled,
            max_batch_rows=batching.max_batch_rows,
            max_wait_ms=batching.max_wait_ms,
            on_batch=metrics.observe_batch,
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes, more than the limit of {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is more than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _matrix_schema(cfg: ServingConfig) -> dict[str, Any]:
    row = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": cfg.input_size,
        "maxItems": cfg.input_size,
    }
    return {"type": "array", "items": row, "minItems": 1, "maxItems": cfg.max_batch_rows}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


_ERROR = {
    "content": {JSON: {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown model or version", **_ERROR},
    413: {"description": "Too many rows or too large a body", **_ERROR},
    422: {"description": "Invalid input: the message names the row and the problem", **_ERROR},
    503: {"description": "The model is not ready", **_ERROR},
}


def create_app(
    cfg: ServingConfig, estimator: object, *, load_seconds: float | None = None
) -> FastAPI:
    """Build the app serving `estimator` as described by `cfg`.

    Raises serving.model.ModelError if the estimator does not fit the config or fails warm-up.
    """
    model = ServedModel(cfg, estimator)
    model.warm_up()
    metrics = Metrics()
    state = State(cfg, model, metrics)
    metrics.model_info.labels(cfg.name, cfg.version or "", cfg.model.sha256 or "").set(1)
    if load_seconds is not None:
        metrics.load_seconds.set(load_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        # Warm up through the model thread too, so readiness means the real path has worked.
        await state.batcher.predict(model.primary_output, np.zeros((1, cfg.input_size)))
        state.ready = True
        log.info("model %s ready", cfg.name)
        try:
            yield
        finally:
            state.ready = False
            state.batcher.stop()

    app = FastAPI(
        title=f"serving: {cfg.name}",
        version=cfg.version or "0",
        description="Predictions from one model version (DESIGN.md 3.2).",
        lifespan=lifespan,
    )
    app.state.serving = state
    register_error_handlers(app)
    _add_predict_routes(app, state)
    _add_v2_routes(app, state)
    app.add_middleware(AccessLogMiddleware, metrics=metrics)
    return app


def _add_predict_routes(app: FastAPI, state: State) -> None:
    cfg, model = state.cfg, state.model
    matrix = _matrix_schema(cfg)
    body_schema = {
        "oneOf": [
            matrix,
            {
                "type": "object",
                "required": ["instances"],
                "properties": {"instances": matrix},
            },
        ]
    }
    if model.classes is not None:
        answer = {
            "type": "object",
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number"}},
                },
                "classes": {"type": "array"},
            },
        }
    else:
        answer = {"type": "object", "properties": {"predictions": {"type": "array"}}}

    @app.post(
        "/predict",
        openapi_extra=_json_body(body_schema),
        responses={200: {"content": {JSON: {"schema": answer}}}, **_ERRORS},
    )
    async def predict(request: Request) -> Response:
        """Predict: class probabilities for classification, values for regression."""
        body = await read_body(request, cfg.max_body_bytes)
        rows = predict_rows(parse_json(body))
        maybe_bool = b"true" in body or b"false" in body
        features = to_matrix(rows, cfg.input_size, cfg.max_batch_rows, maybe_bool=maybe_bool)
        result = await state.batcher.predict(model.primary_output, features)
        payload = orjson.dumps(np.ascontiguousarray(result), option=orjson.OPT_SERIALIZE_NUMPY)
        if model.classes is not None:
            content = b'{"predictions":' + payload + b',"classes":' + model.classes_json + b"}"
        else:
            content = b'{"predictions":' + payload + b"}"
        return Response(content, media_type=JSON)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _add_v2_routes(app: FastAPI, state: State) -> None:
    cfg, model = state.cfg, state.model

    def check_model(name: str, version: str | None = None) -> None:
        if name != cfg.name:
            raise ModelNotFound(f"model {name!r} is not served here (this is {cfg.name!r})")
        if version is not None and version != (cfg.version or ""):
            raise ModelNotFound(f"version {version!r} of model {name!r} is not served here")

    def check_ready() -> None:
        if not state.ready:
            raise ModelNotReady("the model is not ready")

    @app.get("/v2/health/live", responses=_ERRORS)
    async def live() -> Response:
        """Liveness: the process answers."""
        return Response(b'{"live":true}', media_type=JSON)

    @app.get("/v2/health/ready", responses=_ERRORS)
    async def ready() -> Response:
        """Readiness: the model is loaded and a warm-up prediction succeeded."""
        check_ready()
        return Response(b'{"ready":true}', media_type=JSON)

    @app.get("/v2", responses=_ERRORS)
    async def server_metadata() -> Response:
        """Server metadata."""
        return Response(
            orjson.dumps({"name": "serving", "version": "1", "extensions": []}), media_type=JSON
        )

    # Enums in the OpenAPI document tell clients (and the fuzzing tests) the one valid name.
    name_param = Path(json_schema_extra={"enum": [cfg.name]})
    version_param = Path(json_schema_extra={"enum": [cfg.version]} if cfg.version else None)

    async def metadata(name: str, version: str | None = None) -> Response:
        check_model(name, version)
        return Response(orjson.dumps(v2.model_metadata(model)), media_type=JSON)

    async def model_ready(name: str, version: str | None = None) -> Response:
        check_model(name, version)
        check_ready()
        return Response(orjson.dumps({"name": name, "ready": True}), media_type=JSON)

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        check_model(name, version)
        body = await read_body(request, cfg.max_body_bytes)
        header = request.headers.get("inference-header-content-length")
        features, outputs, request_id = v2.parse_infer_request(
            body, header, model, cfg.max_batch_rows
        )
        results = {}
        for output in outputs:
            results[output] = await state.batcher.predict(output, features)
        return Response(v2.infer_response(model, results, request_id), media_type=JSON)

    infer_extra = _json_body(_infer_request_schema(cfg))
    model_path = "/v2/models/{name}"
    version_path = "/v2/models/{name}/versions/{version}"

    @app.get(model_path, responses=_ERRORS)
    async def model_metadata(name: str = name_param) -> Response:
        """Model metadata: input shape [-1, inputSize], datatypes and outputs."""
        return await metadata(name)

    @app.get(f"{version_path}", responses=_ERRORS)
    async def model_version_metadata(
        name: str = name_param, version: str = version_param
    ) -> Response:
        """Model metadata for one version."""
        return await metadata(name, version)

    @app.get(f"{model_path}/ready", responses=_ERRORS)
    async def model_is_ready(name: str = name_param) -> Response:
        """Model readiness."""
        return await model_ready(name)

    @app.get(f"{version_path}/ready", responses=_ERRORS)
    async def model_version_is_ready(
        name: str = name_param, version: str = version_param
    ) -> Response:
        """Model readiness for one version."""
        return await model_ready(name, version)

    @app.post(f"{model_path}/infer", responses=_ERRORS, openapi_extra=infer_extra)
    async def model_infer(request: Request, name: str = name_param) -> Response:
        """Inference (Open Inference Protocol)."""
        return await infer(request, name)

    @app.post(f"{version_path}/infer", responses=_ERRORS, openapi_extra=infer_extra)
    async def model_version_infer(
        request: Request, name: str = name_param, version: str = version_param
    ) -> Response:
        """Inference on one version (Open Inference Protocol)."""
        return await infer(request, name, version)


def _infer_request_schema(cfg: ServingConfig) -> dict[str, Any]:
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
            "datatype": {"enum": list(v2.INPUT_DATATYPES)},
            "data": {"type": "array", "items": {"type": "number"}},
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
    }
