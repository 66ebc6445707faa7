"""Plain Starlette routes and the raw request helpers the prediction routes share.

The hot routes read headers and bodies straight from the ASGI scope: building Starlette's
Headers or FastAPI's dependency tree costs more than the lookups themselves.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Scope

from serving.errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding


class TemplateRoute(Route):
    """A Starlette route that records itself in the scope, so metrics can label by template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def raw_header(request: Request, name: bytes) -> str | None:
    """One request header by its lower-case name, read straight from the ASGI scope (which
    lower-cases names)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds `limit` bytes, and decoding a
    gzip or deflate Content-Encoding (tritonclient's request compression). The decoded size
    counts against `limit` too, so a small body that inflates without end (a decompression
    bomb) is refused like a large one."""
    declared = encoding = None
    for key, value in request.scope["headers"]:  # one pass for both headers
        if key == b"content-length":
            declared = value
        elif key == b"content-encoding":
            encoding = value
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {int(declared)} bytes, more than the limit of {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is more than the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding is None:
        return body
    return decompress(body, encoding.decode("latin-1").strip().lower(), limit)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding == "identity":
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS  # zlib-wrapped, as HTTP's "deflate" means (raw is tried below)
    else:
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported: use gzip")
    try:
        return _inflate(body, wbits, limit)
    except zlib.error:
        if encoding != "deflate":
            raise InvalidInput("the body is not valid gzip data") from None
    try:  # some clients send raw deflate under "deflate"
        return _inflate(body, -zlib.MAX_WBITS, limit)
    except zlib.error:
        raise InvalidInput("the body is not valid deflate data") from None


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed body is more than the limit of {limit} bytes")
    if not inflater.eof:
        raise zlib.error("truncated")
    return out
