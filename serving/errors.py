"""Domain errors and their HTTP answers, registered in one place.

Handlers and the model raise these; nothing below the app raises HTTPException.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


def register_error_handlers(app: FastAPI, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Map domain errors (and anything unexpected) to JSON answers carrying `headers` (raw
    header pairs, such as the model version)."""
    extra = list(headers)

    def answer(status_code: int, message: str) -> Response:
        response = error_response(status_code, message)
        response.raw_headers.extend(extra)
        return response

    async def serving_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
        return answer(exc.status_code, str(exc))

    async def request_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(422, f"{where}: {first.get('msg', 'invalid request')}")

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error while handling a request")
        return answer(500, f"internal error: {type(exc).__name__}")

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(Exception, unexpected)
