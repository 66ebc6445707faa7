"""The benchmark's floor: a constant answer from the same stack as serving's hot path.

A FastAPI app on uvicorn whose infer and predict routes are plain Starlette routes, as in
serving/app.py: they read the body and answer pre-rendered JSON, with no parsing, model or
metrics, which bounds what any handler on this stack can reach.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

INFER = (
    b'{"model_name":"floor","outputs":[{"name":"predict_proba","shape":[1,3],'
    b'"datatype":"FP64","data":[0.2,0.3,0.5]}]}'
)
PREDICT = b'{"predictions":[[0.2,0.3,0.5]],"classes":[0,1,2]}'


async def infer(request: Request) -> Response:
    await request.body()
    return Response(INFER, media_type="application/json")


async def predict(request: Request) -> Response:
    await request.body()
    return Response(PREDICT, media_type="application/json")


# Configured as serving/app.py configures its app (no OpenTelemetry hooks).
app = FastAPI(
    telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
)
app.router.routes[0:0] = [
    Route("/predict", predict, methods=["POST"]),
    Route("/v2/models/{name}/infer", infer, methods=["POST"]),
]


@app.get("/v2/health/ready")
async def ready() -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")
