"""Property-based fuzzing from the app's own OpenAPI document: no input yields a 5xx.

Schemathesis generates valid and invalid requests for every operation the running server
documents and sends them over HTTP. (Its pytest fixture loader does not work with pytest 9
yet, so the operations are driven through hypothesis directly.)
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

EXAMPLES = 40


@pytest.fixture(scope="module")
def operations(iris_server) -> list:
    schema = schemathesis.openapi.from_url(f"{iris_server.url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in found} >= {"POST /predict", "POST /v2/models/{name}/infer"}
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(operations, iris_server, mode) -> None:
    checked = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case) -> None:
            case.call_and_validate(
                base_url=iris_server.url, checks=[not_a_server_error], timeout=30
            )

        try:
            call()
        except Unsatisfiable:
            # Nothing to make invalid (e.g. GET /v2/health/live has no parameters).
            assert mode is GenerationMode.NEGATIVE
            continue
        checked.append(operation.label)
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
