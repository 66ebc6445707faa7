"""The FastAPI app: thin protocol adapters over one ServedModel and its MicroBatcher.

Prediction bodies are parsed here with orjson + numpy and answered with pre-rendered JSON,
and the prediction routes are plain Starlette routes: FastAPI's pydantic body path and
per-request dependency solving cost more than the model itself (bench/serving.py). Their OpenAPI
entries come from serving/openapi.py. The other routes are ordinary FastAPI routes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Path, Request
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.routing import Route

from serving import openapi, v1, v2
from serving.config import ServingConfig
from serving.errors import register_error_handlers
from serving.inputs import parse_json, predict_rows, to_matrix
from serving.metrics import AccessLogMiddleware, AccessLogWriter, Metrics
from serving.model import ServedModel
from serving.routing import TemplateRoute as _Route
from serving.routing import raw_header, read_body
from serving.state import State

log = logging.getLogger("serving")

JSON = "application/json"
_ERRORS = openapi.ERRORS
# Shutdown runs once uvicorn has drained HTTP; gRPC calls in flight then get this long.
GRPC_GRACE_SECONDS = 5.0
NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(
    cfg: ServingConfig,
    estimator: object,
    *,
    load_seconds: float | None = None,
    grpc_address: str | None = None,
    grpc_required: bool = False,
) -> FastAPI:
    """Build the app serving `estimator` as described by `cfg`; with `grpc_address`
    ("host:port") the app also serves the Open Inference Protocol's gRPC service there.
    A gRPC port that cannot be bound stops the start only if `grpc_required`.

    Raises serving.model.ModelError if the estimator does not fit the config or fails warm-up.
    """
    model = ServedModel(cfg, estimator)
    model.warm_up()
    metrics = Metrics()
    access_log = AccessLogWriter()
    state = State(cfg, model, metrics)
    metrics.model_info.labels(cfg.name, cfg.version or "", cfg.model.sha256 or "").set(1)
    if load_seconds is not None:
        metrics.load_seconds.set(load_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        state.predictions.start()
        # gRPC listens before the model is ready, so its clients see UNAVAILABLE, not a refusal.
        grpc_service = (
            await _start_grpc(state, grpc_address, grpc_required) if grpc_address else None
        )
        # Warm up through the model thread too, so readiness means the real path has worked.
        await state.batcher.predict(model.primary_output, model.probe_input())
        state.ready = True
        log.info("model %s ready", cfg.name)
        try:
            yield
        finally:
            state.ready = False
            if grpc_service is not None:
                await grpc_service.stop(GRPC_GRACE_SECONDS)
            state.batcher.stop()
            state.predictions.stop()
            access_log.flush()

    app = FastAPI(
        title=f"serving: {cfg.name}",
        version=cfg.version or "0",
        description="Predictions from one model version.",
        lifespan=lifespan,
        # serving exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks would cost
        # a check per request even with no provider configured.
        telemetry=NO_TELEMETRY,
    )
    app.state.serving = state
    register_error_handlers(app, headers=[state.version_header])
    # Prediction routes first: the router tries routes in order.
    app.router.routes[0:0] = _prediction_routes(state)
    _add_v2_routes(app, state)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        """Prometheus metrics."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def openapi_document() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document["paths"].update(openapi.prediction_paths(cfg, model))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi_document  # type: ignore[method-assign]
    app.add_middleware(AccessLogMiddleware, metrics=metrics, writer=access_log)
    return app


async def _start_grpc(state: State, address: str, required: bool) -> Any:
    from serving import grpc_server  # grpc is imported only when the service is on

    try:
        server = await grpc_server.start(state, address)
    except OSError as exc:
        # Only the config's port (8081 by default) may be taken, by another serving process
        # on the same machine: REST, the contract every probe and client relies on, goes on.
        if required:
            raise
        log.warning("serving without gRPC: %s; pass --grpc-port (0: no gRPC)", exc)
        return None
    log.info("gRPC (Open Inference Protocol) on %s", address)
    return server


def _prediction_routes(state: State) -> list[Route]:
    cfg, model, batcher = state.cfg, state.model, state.batcher
    version_header = state.version_header

    table = model.table

    async def predict(request: Request) -> Response:
        body = await read_body(request, cfg.max_body_bytes)
        maybe_bool = b"true" in body or b"false" in body
        if table is None:
            rows = predict_rows(parse_json(body))
            features = to_matrix(rows, cfg.input_size, cfg.max_batch_rows, maybe_bool=maybe_bool)
        else:
            features = table.parse(parse_json(body), cfg.max_batch_rows, maybe_bool)
            rows = features  # logged as objects keyed by column (serving/predlog.py)
        result = await batcher.predict(model.primary_output, features)
        payload = _json_array(result)
        if model.scores:  # a classifier without probabilities: labels, and its scores
            scores = _json_array(await batcher.predict("decision_function", features))
            content = b'{"predictions":%b,"classes":%b,"scores":%b}' % (
                payload,
                model.classes_json,
                scores,
            )
        elif model.classes is not None:
            content = b'{"predictions":' + payload + b',"classes":' + model.classes_json + b"}"
        else:
            content = b'{"predictions":' + payload + b"}"
        response = Response(content, media_type=JSON)
        response.raw_headers.append(version_header)
        state.predictions.record_request(request, rows, result)
        return response

    async def infer(request: Request) -> Response:
        params = request.path_params
        state.check_model(params["name"], params.get("version"))
        body = await read_body(request, cfg.max_body_bytes)
        header = raw_header(request, b"inference-header-content-length")
        features, outputs, request_id, binary = v2.parse_infer_request(
            body, header, model, cfg.max_batch_rows
        )
        if len(outputs) == 1:
            results = {outputs[0]: await batcher.predict(outputs[0], features)}
        else:  # queued together, so they share the batcher's next model calls
            answers = await asyncio.gather(*(batcher.predict(o, features) for o in outputs))
            results = dict(zip(outputs, answers, strict=True))
        if binary:
            content, length = v2.binary_infer_response(model, results, request_id, binary)
            response = Response(
                content,
                media_type="application/octet-stream",
                headers={"inference-header-content-length": str(length)},
            )
        else:
            response = Response(v2.infer_response(model, results, request_id), media_type=JSON)
        response.raw_headers.append(version_header)
        state.predictions.record_request(request, features, results, request_id)
        return response

    return [
        _Route("/predict", predict, methods=["POST"]),
        _Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        _Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        # After the hot routes: the router tries each route's pattern in turn.
        *v1.routes(state, predict),
    ]


def _json_array(values: np.ndarray) -> bytes:
    if values.dtype.kind in "OUS":  # string labels
        return orjson.dumps([str(v) for v in values.tolist()])
    return orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)


def _add_v2_routes(app: FastAPI, state: State) -> None:
    cfg, model = state.cfg, state.model
    # Enums in the OpenAPI document tell clients (and the fuzzing tests) the one valid name.
    names = list(dict.fromkeys((model.name, cfg.name)))  # the deployment's name, the model's
    name_param = Path(json_schema_extra={"enum": names})
    version_param = Path(json_schema_extra={"enum": [cfg.version]} if cfg.version else None)

    @app.get("/v2/health/live", responses=_ERRORS)
    async def live() -> Response:
        """Liveness: the process answers."""
        return Response(b'{"live":true}', media_type=JSON)

    @app.get("/v2/health/ready", responses=_ERRORS)
    async def ready() -> Response:
        """Readiness: the model is loaded and a warm-up prediction succeeded."""
        state.check_ready()
        return Response(b'{"ready":true}', media_type=JSON)

    server = orjson.dumps({"name": "serving", "version": "1", "extensions": v2.EXTENSIONS})

    @app.get("/v2", responses=_ERRORS)
    async def server_metadata() -> Response:
        """Server metadata: name, version and the protocol extensions supported."""
        return Response(server, media_type=JSON)

    # The spec's clients also ask with a trailing slash; answer it rather than redirect.
    app.add_api_route("/v2/", server_metadata, methods=["GET"], include_in_schema=False)

    def metadata(name: str, version: str | None = None) -> Response:
        state.check_model(name, version)
        return Response(orjson.dumps(v2.model_metadata(model)), media_type=JSON)

    def model_ready(name: str, version: str | None = None) -> Response:
        state.check_model(name, version)
        state.check_ready()
        return Response(orjson.dumps({"name": name, "ready": True}), media_type=JSON)

    @app.get("/v2/models/{name}", responses=_ERRORS)
    async def model_metadata(name: str = name_param) -> Response:
        """Model metadata: input shape [-1, inputSize], datatypes and outputs."""
        return metadata(name)

    @app.get("/v2/models/{name}/versions/{version}", responses=_ERRORS)
    async def model_version_metadata(
        name: str = name_param, version: str = version_param
    ) -> Response:
        """Model metadata for one version."""
        return metadata(name, version)

    @app.get("/v2/models/{name}/ready", responses=_ERRORS)
    async def model_is_ready(name: str = name_param) -> Response:
        """Model readiness."""
        return model_ready(name)

    @app.get("/v2/models/{name}/versions/{version}/ready", responses=_ERRORS)
    async def model_version_is_ready(
        name: str = name_param, version: str = version_param
    ) -> Response:
        """Model readiness for one version."""
        return model_ready(name, version)
