"""KServe V1 REST: the protocol the `kserve` SDK's InferenceRESTClient speaks by default.

`POST /v1/models/{name}:predict` takes `{"instances": [[...], ...]}` and answers exactly as
`/predict` does (`{"predictions": ...}`, plus `classes` for a classifier); the other routes
are liveness (`GET /`, as KServe answers it), the model list and model readiness.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.routing import TemplateRoute

if TYPE_CHECKING:
    from serving.state import State

JSON = "application/json"
Endpoint = Callable[[Request], Awaitable[Response]]


def routes(state: State, predict: Endpoint) -> list[Route]:
    """The V1 routes; `predict` is the /predict endpoint, which V1's predict shares."""
    models = orjson.dumps({"models": [state.model.name]})

    async def live(_: Request) -> Response:
        return Response(b'{"status":"alive"}', media_type=JSON)

    async def list_models(_: Request) -> Response:
        return Response(models, media_type=JSON)

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        state.check_model(name)
        # KServe answers 503 while the model loads; the SDK reads that as "not ready".
        return Response(
            orjson.dumps({"name": name, "ready": state.ready}),
            status_code=200 if state.ready else 503,
            media_type=JSON,
        )

    async def v1_predict(request: Request) -> Response:
        state.check_model(request.path_params["name"])
        return await predict(request)

    return [
        TemplateRoute("/v1/models/{name}:predict", v1_predict, methods=["POST"]),
        TemplateRoute("/", live, methods=["GET"]),
        TemplateRoute("/v1/models", list_models, methods=["GET"]),
        TemplateRoute("/v1/models/{name}", model_ready, methods=["GET"]),
    ]
