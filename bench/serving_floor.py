"""The benchmark's floor: a constant answer from the same stack (FastAPI on uvicorn).

It reads the request body and answers pre-rendered JSON, doing no parsing and no model
work, so it bounds what any handler on this stack can reach.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()
ANSWER = b'{"model_name":"floor","outputs":[{"name":"predict_proba","shape":[1,3],"datatype":"FP64","data":[0.2,0.3,0.5]}]}'  # noqa: E501


@app.post("/v2/models/{name}/infer")
async def infer(request: Request, name: str) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(
        b'{"predictions":[[0.2,0.3,0.5]],"classes":[0,1,2]}', media_type="application/json"
    )


@app.get("/v2/health/ready")
async def ready() -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")
