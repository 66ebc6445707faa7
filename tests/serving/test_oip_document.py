"""Fuzzing with the Open Inference Protocol's own REST document: no server error, and every
answer's status, content type and body as that document says, apart from the deviations below.

The document writes its path templates as `${MODEL_NAME}`, which OpenAPI tools read as literal
text; they become `{MODEL_NAME}` here, pinned to the served model so that generated requests
reach the handlers.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT = Path(__file__).parent / "oip" / "open_inference_rest.yaml"
EXAMPLES = 60
PATH_VALUES = {"MODEL_NAME": "iris", "MODEL_VERSION": "3"}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        }
    }
}
# Answers the document does not list, which its prose (inference_rest.md) and README allow.
DEVIATIONS = {
    "404": {"description": "Another model or version than the one served", **_ERROR},
    "413": {"description": "More rows than maxBatchRows, or a body over maxBodyBytes", **_ERROR},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def oip_document() -> dict:
    raw = yaml.safe_load(DOCUMENT.read_text())
    paths = {}
    for template, item in raw["paths"].items():
        item = copy.deepcopy(item)
        for parameter in item.get("parameters", []):
            parameter["schema"] = {"type": "string", "enum": [PATH_VALUES[parameter["name"]]]}
        for method in ("get", "post"):
            if method in item:
                item[method]["responses"].update(DEVIATIONS)
        paths[template.replace("${", "{")] = item
    raw["paths"] = paths
    return raw


def test_the_document_is_the_protocols_own() -> None:
    """The quirk is fixed in the loaded copy only: the vendored file stays as published."""
    text = DOCUMENT.read_text()
    assert "'/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer':" in text
    assert "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer" in oip_document()["paths"]


@pytest.fixture(scope="module")
def operations() -> list:
    schema = schemathesis.openapi.from_dict(oip_document())
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) == 6
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_serving_follows_the_oip_document(operations, iris_server, mode) -> None:
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
            case.call_and_validate(base_url=iris_server.url, checks=CHECKS, timeout=30)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to make invalid
            continue
        checked.append(operation.label)
    assert "POST /v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer" in checked


def _operation(operations: list, label: str):
    (found,) = [op for op in operations if op.label == label]
    return found


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1] * 8}]},
        {
            "id": "42",
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "UINT32", "data": [5, 3, 1, 0]}],
            "outputs": [{"name": "predict"}],
        },
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BOOL", "data": [True] * 4}]},
    ],
)
def test_valid_infer_answers_conform(operations, iris_server, body) -> None:
    """Fuzzed bodies rarely fit the model; these do, so the 200 answers are checked too."""
    infer = _operation(operations, "POST /v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer")
    case = infer.Case(path_parameters=PATH_VALUES, body=body, media_type="application/json")
    response = case.call_and_validate(base_url=iris_server.url, checks=CHECKS, timeout=30)
    assert response.status_code == 200
    assert response.json()["outputs"]


def test_metadata_answers_conform(operations, iris_server) -> None:
    for label in ("GET /v2/", "GET /v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}"):
        case = _operation(operations, label).Case(path_parameters=PATH_VALUES)
        response = case.call_and_validate(base_url=iris_server.url, checks=CHECKS, timeout=30)
        assert response.status_code == 200
