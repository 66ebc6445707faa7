"""The JSON depth check the console runs before parsing: brackets inside strings do not count,
the limit itself is accepted, one more level is refused, and nothing reaches the recursion."""

from __future__ import annotations

import json

import pytest

from deployments.constants import MAX_JSON_DEPTH
from deployments.json_limits import JSONTooDeep, load_json, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [[1, 2], {"b": null}]}', 3),
        ('["[[[[", "]]]]"]', 1),
        (r'["a \"[[[ quoted", {"k\\": "{{{"}]', 2),
        (json.dumps([[0.5] * 100] * 100), 2),
    ],
)
def test_depth_counts_brackets_outside_strings(text, depth):
    assert nesting_depth(text) == depth


def test_the_limit_is_accepted_and_one_more_level_refused():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert load_json(at_limit) == json.loads(at_limit)
    with pytest.raises(JSONTooDeep, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
        load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000, b"[" * 100_000])
def test_very_deep_documents_are_a_value_error_not_a_recursion_error(body):
    with pytest.raises(ValueError, match="nested more than"):
        load_json(body)


def test_malformed_json_is_still_a_parse_error():
    with pytest.raises(json.JSONDecodeError):
        load_json('{"a": [1, 2}')
