"""JSON the console reads (request bodies, the serving endpoints' answers, the validation
child's report) is refused when nested deeper than MAX_JSON_DEPTH, before Python's recursive
parser could run out of stack on it."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from deployments.constants import MAX_JSON_DEPTH

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(ValueError):
    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(f"the JSON is nested more than {limit} levels deep, the most accepted")


def nesting_depth(text: str) -> int:
    """How deeply brackets nest, brackets inside strings not counted. Every step runs in C
    (regular expressions, accumulate): about 30 ms for 10 MB of numbers."""
    if '"' in text:
        text = _STRING.sub("", text)
    return max(accumulate(map(_STEP.__getitem__, _BRACKET.findall(text))), default=0)


def load_json(text: str | bytes, limit: int = MAX_JSON_DEPTH, **kwargs: Any) -> Any:
    """`json.loads`, raising JSONTooDeep (a ValueError) for documents nested too deeply."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    if nesting_depth(text) > limit:
        raise JSONTooDeep(limit)
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # a document the scan misjudged; never a 500
        raise JSONTooDeep(limit) from None
