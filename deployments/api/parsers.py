"""The API's JSON parsers: REST framework's, with nesting depth limited (a deep document is a
400 naming the limit, not a RecursionError), and a stricter one for prediction inputs."""

from __future__ import annotations

import math

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from deployments.json_limits import load_json


class JSONParser(parsers.JSONParser):
    """REST framework's JSON parser with a depth limit; NaN and Infinity are refused."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            # The body's size is already bounded (console.limits), so reading it whole is fine.
            text = stream.read().decode(encoding)
            return load_json(text, **self.options())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

    def options(self) -> dict:
        return {"parse_constant": strict_constant}


class FiniteJSONParser(JSONParser):
    """JSON whose numbers are all finite: 1e400 would become infinity, which is no number."""

    def options(self) -> dict:
        return {"parse_constant": _refuse_constant, "parse_float": _finite_float}


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


class CSVParser(parsers.BaseParser):
    """A text/csv body as bytes (its size is bounded by console.limits)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""
