"""Domain errors and their HTTP answers, registered in one place.

Handlers and the model raise these; nothing below the app raises HTTPException.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

log = logging.getLogger("serving")


class ServingError(Exception):
    """Base class: carries the HTTP status the client should get."""

    status_code = 500


class InvalidInput(ServingError):
    """The request body cannot be turned into a valid feature matrix."""

    status_code = 422


class PayloadTooLarge(ServingError):
    """Too many rows or too many bytes."""

    status_code = 413


class UnsupportedEncoding(ServingError):
    """A Content-Encoding other than gzip, deflate or identity."""

    status_code = 415


class ModelNotFound(ServingError):
    """The URL names a model (or version) this process does not serve."""

    status_code = 404


class ModelNotReady(ServingError):
    """The model has not finished loading or warming up, or the server is shutting down."""

    status_code = 503


class PredictionFailed(ServingError):
    """The estimator raised on valid input: a server-side problem, reported with its reason."""

    status_code = 500


def error_response(status_code: int, message: str) -> Response:
    """The JSON error body every error uses: {"error": message}."""
    return Response(
        orjson.dumps({"error": message}), status_code=status_code, media_type="application/json"
    )


# The KServe protocols (V1 and the Open Inference Protocol) answer invalid input with 400;
# the project's own /predict keeps its documented 422.
_PROTOCOL_PREFIXES = ("/v1/", "/v2/")


def invalid_input_status(path: str) -> int:
    """The status of invalid input on this path: 400 on the protocol routes, else 422."""
    return 400 if path.startswith(_PROTOCOL_PREFIXES) else InvalidInput.status_code


def register_error_handlers(app: FastAPI, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Map domain errors (and anything unexpected) to JSON answers carrying `headers` (raw
    header pairs, such as the model version)."""
    extra = list(headers)

    def answer(status_code: int, message: str) -> Response:
        response = error_response(status_code, message)
        response.raw_headers.extend(extra)
        return response

    async def serving_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
        status = exc.status_code
        if isinstance(exc, InvalidInput):
            status = invalid_input_status(request.scope["path"])
        return answer(status, str(exc))

    async def request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return answer(invalid_input_status(request.scope["path"]), message)

    async def http_error(_: Request, exc: Exception) -> Response:
        # Unknown routes (404) and wrong methods (405) answer {"error"} like everything else.
        assert isinstance(exc, HTTPException)
        response = answer(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error while handling a request")
        return answer(500, f"internal error: {type(exc).__name__}")

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
