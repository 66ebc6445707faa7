"""The benchmark's floor: a constant answer from the same stack as serving.

The same FastAPI app shell as serving/app.py (OpenTelemetry hooks off, the access-log and
metrics middleware, plain Starlette routes for predictions) on the same uvicorn settings,
but the handlers only read the body (with serving's own read_body) and answer pre-rendered
JSON: no parsing, no model.
What serving adds on top of this is the price of the prediction itself.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.__main__ import configure_logging
from serving.app import NO_TELEMETRY, read_body
from serving.config import ServingConfig
from serving.metrics import AccessLogMiddleware, AccessLogWriter, Metrics

INFER = (
    b'{"model_name":"floor","outputs":[{"name":"predict_proba","shape":[1,3],'
    b'"datatype":"FP64","data":[0.2,0.3,0.5]}]}'
)
LIMIT = ServingConfig.model_fields["max_body_bytes"].default
PREDICT = b'{"predictions":[[0.2,0.3,0.5]],"classes":[0,1,2]}'


async def infer(request: Request) -> Response:
    await read_body(request, LIMIT)
    return Response(INFER, media_type="application/json")


async def predict(request: Request) -> Response:
    await read_body(request, LIMIT)
    return Response(PREDICT, media_type="application/json")


def create_floor_app() -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY)
    app.router.routes[0:0] = [
        Route("/predict", predict, methods=["POST"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
    ]

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    app.add_middleware(AccessLogMiddleware, metrics=Metrics(), writer=AccessLogWriter())
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure_logging("info")
    logging.getLogger("serving").info("floor on port %d", args.port)
    uvicorn.run(
        create_floor_app(),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )
