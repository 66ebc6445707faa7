"""Schemathesis against the console's own OpenAPI document (/api/schema/), authenticated with a
token: generated valid and invalid requests for every operation find no server error.

(Operations are driven through hypothesis directly: tests/support/fuzz.py.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode

from tests.support.fuzz import check_no_server_errors
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

EXAMPLES = 25
# Token management would revoke the token the fuzzer authenticates with; it has its own tests.
SKIPPED = {"POST /api/token/", "DELETE /api/token/", "DELETE /api/tokens/{id}/"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """A console of its own: the fuzzer registers models with random names."""
    with ConsoleStack(Path(tmp_path_factory.mktemp("fuzz-var"))) as stack:
        yield stack


@pytest.fixture(scope="module")
def operations(fuzzed: ConsoleStack) -> list:
    headers = {"Authorization": f"Token {fuzzed.tokens['admin']}"}
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/api/schema/", headers=headers)
    found = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in found}
    assert {
        "GET /api/deployments/",
        "POST /api/deployments/",
        "PATCH /api/deployments/{name}/",
        "POST /api/deployments/{name}/predict/",
        "POST /api/models/{model_name}/versions/",
    } <= labels, labels
    return [op for op in found if op.label not in SKIPPED]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzzed, operations, mode) -> None:
    headers = {"Authorization": f"Token {fuzzed.tokens['admin']}"}
    checked = check_no_server_errors(operations, mode, fuzzed.url, EXAMPLES, headers)
    assert len(checked) >= 10, checked


def test_the_access_log_shows_no_server_error(fuzzed, operations) -> None:
    """Belt and braces: the web server itself logged no 5xx during the fuzzing."""
    log = fuzzed.log("web")
    requests = re.findall(r'"(?:GET|POST|PUT|PATCH|DELETE|OPTIONS|HEAD) [^"]*" (\d{3})', log)
    assert len(requests) > 100
    assert [code for code in requests if code.startswith("5")] == []
