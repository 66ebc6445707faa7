"""Schemathesis driven through hypothesis directly (its pytest loader does not work with
pytest 9 yet): generated requests for each operation of a running server's OpenAPI document."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode


def check_no_server_errors(
    operations: list,
    mode: GenerationMode,
    base_url: str,
    examples: int,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> list[str]:
    """Send `examples` generated requests per operation; none may answer 5xx. Returns the
    labels of the operations checked (a negative run skips those with nothing to make invalid)."""
    checked = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case) -> None:
            case.call_and_validate(
                base_url=base_url, headers=headers, checks=[not_a_server_error], timeout=timeout
            )

        try:
            call()
        except Unsatisfiable:
            # Nothing to make invalid (e.g. GET /v2/health/live has no parameters).
            assert mode is GenerationMode.NEGATIVE
            continue
        checked.append(operation.label)
    return checked
