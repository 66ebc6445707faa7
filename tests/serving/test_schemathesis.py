"""Property-based fuzzing from the app's own OpenAPI document: no input yields a 5xx.

Schemathesis generates valid and invalid requests for every operation the running server
documents and sends them over HTTP (tests/support/fuzz.py).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode

from tests.support.fuzz import check_no_server_errors

EXAMPLES = 40


@pytest.fixture(scope="module")
def operations(iris_server) -> list:
    schema = schemathesis.openapi.from_url(f"{iris_server.url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in found} >= {"POST /predict", "POST /v2/models/{name}/infer"}
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(operations, iris_server, mode) -> None:
    checked = check_no_server_errors(operations, mode, iris_server.url, EXAMPLES, timeout=30)
    assert {"POST /predict", "POST /v2/models/{name}/infer"} <= set(checked)


def test_fuzzing_reached_the_handlers(iris_server) -> None:
    """Valid generated bodies were predicted, invalid ones refused; none failed with a 500."""
    text = httpx.get(f"{iris_server.url}/metrics").text
    for line in (
        'method="POST",route="/predict",status="200"',
        'method="POST",route="/predict",status="422"',
        'method="POST",route="/v2/models/{name}/infer",status="400"',
    ):
        assert line in text
    assert 'status="500"' not in text
