"""The console API's bad-input catalogue: every case gets a clear error (status code and a
message naming the problem) and leaves nothing behind: no deployment, model or event appears,
and a running deployment keeps serving.

(Uploads are covered in tests/registry and tests/bad_input/test_uploads.py, serving
inputs in tests/serving; this module is the console's JSON API.)
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import wait_for_status

pytestmark = pytest.mark.integration

MODEL = "hard-iris"
RUNNING = "bad-input-running"
GOOD = {"name": "bad-x", "model": MODEL, "version": 1}

# (case, body, status, words the message must contain)
CREATE_CASES = [
    ("upper case name", {**GOOD, "name": "Iris-Prod"}, 400, ['e.g. "iris-prod"']),
    ("path traversal name", {**GOOD, "name": "../x"}, 400, ['e.g. "x"']),
    ("slash in name", {**GOOD, "name": "a/b"}, 400, ['e.g. "a-b"']),
    ("name over 63 characters", {**GOOD, "name": "a" * 64}, 400, ["63 characters"]),
    ("unicode name", {**GOOD, "name": "modèle"}, 400, ['e.g. "mod-le"']),
    ("emoji name", {**GOOD, "name": "🚀"}, 400, ["Use lowercase letters, digits and dashes"]),
    ("empty name", {**GOOD, "name": ""}, 400, ["Enter a name."]),
    ("null byte in name", {**GOOD, "name": "a\x00b"}, 400, ["Null characters"]),
    ("leading dash", {**GOOD, "name": "-abc"}, 400, ['e.g. "abc"']),
    ("leading digit", {**GOOD, "name": "1iris"}, 400, ["starting with a letter"]),
    ("missing name", {"model": MODEL}, 400, ["Enter a name."]),
    ("name not a string", {**GOOD, "name": ["a"]}, 400, ["Not a valid string"]),
    ("unknown model", {**GOOD, "model": "no-such-model"}, 400, ["no model named"]),
    ("traversal model", {**GOOD, "model": "../../etc/passwd"}, 400, ["no model named"]),
    ("unknown version", {**GOOD, "version": 99}, 400, ["has no version 99"]),
    ("version zero", {**GOOD, "version": 0}, 400, ["Give a version number such as 2"]),
    ("unknown alias", {**GOOD, "version": "latest"}, 400, ['no version or alias "latest"']),
    ("negative replicas", {**GOOD, "replicas": -1}, 400, ["Use 0 to 50 replicas."]),
    ("too many replicas", {**GOOD, "replicas": 51}, 400, ["Use 0 to 50 replicas."]),
    ("huge replicas", {**GOOD, "replicas": 10**30}, 400, ["Use 0 to 50 replicas."]),
    ("fractional replicas", {**GOOD, "replicas": 1.5}, 400, ["Give a whole number of replicas"]),
    ("bad cpu quantity", {**GOOD, "cpu_request": "lots"}, 400, ["Kubernetes quantity"]),
    ("injected memory", {**GOOD, "memory_limit": "1Gi;rm -rf"}, 400, ["Kubernetes quantity"]),
    ("body is a list", [GOOD], 400, ["Expected a dictionary"]),
]


@pytest.fixture(scope="module")
def running(console, iris_model) -> str:
    client = console.client("deployer")
    response = client.post("/api/deployments/", json={"name": RUNNING, "model": MODEL})
    assert response.status_code == 202, response.text
    body = wait_for_status(client, RUNNING, {"running", "failed"})
    assert body["status"] == "running", body["status_reason"]
    yield RUNNING
    client.post(f"/api/deployments/{RUNNING}/undeploy/")
    wait_for_status(client, RUNNING, {"stopped"})


@pytest.fixture
def nothing_changes(console, running):
    """Snapshot deployments, models and the running deployment's events; compare after."""
    admin = console.client("admin")

    def snapshot() -> tuple:
        deployments = admin.get("/api/deployments/", params={"limit": 1000}).json()
        models = admin.get("/api/models/", params={"limit": 1000}).json()
        events = admin.get(f"/api/deployments/{RUNNING}/events/").json()
        return (
            sorted(d["name"] for d in deployments["results"]),
            sorted(m["name"] for m in models["results"]),
            events["count"],
            admin.get(f"/api/deployments/{RUNNING}/").json()["status"],
        )

    before = snapshot()
    yield
    after = snapshot()
    assert after == before
    assert after[3] == "running"


def _strings(body: object) -> list[str]:
    """Every text in a JSON answer (its messages as a person reads them, quotes unescaped)."""
    if isinstance(body, dict):
        return [s for value in body.values() for s in _strings(value)]
    if isinstance(body, list):
        return [s for value in body for s in _strings(value)]
    return [str(body)]


def _assert_error(response: httpx.Response, status: int, words: list[str]) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    try:
        text = " ".join(_strings(response.json()))
    except ValueError:
        text = response.text
    for word in words:
        assert word.lower() in text.lower(), text[:500]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [case[1:] for case in CREATE_CASES],
    ids=[case[0] for case in CREATE_CASES],
)
def test_create_refuses(console, nothing_changes, body, status, words):
    response = console.client("deployer").post("/api/deployments/", json=body)
    _assert_error(response, status, words)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        ('{"name": "bad-x", ', "application/json", 400, ["JSON parse error"]),
        (
            '{"name": "bad-x", "model": "hard-iris", "replicas": NaN}',
            "application/json",
            400,
            ["JSON parse error"],
        ),
        ("name=bad-x&model=hard-iris", "text/plain", 415, ["Unsupported media type"]),
        (b"\xff\xfe\x00garbage", "application/json", 400, ["JSON parse error"]),
    ],
    ids=["truncated JSON", "NaN in JSON", "wrong content type", "binary garbage"],
)
def test_create_refuses_unparsable_bodies(
    console, nothing_changes, content, content_type, status, words
):
    response = console.client("deployer").post(
        "/api/deployments/", content=content, headers={"Content-Type": content_type}
    )
    _assert_error(response, status, words)


def test_an_oversized_body_is_refused_before_parsing(console, nothing_changes):
    body = b'{"name": "bad-x", "model": "hard-iris", "pad": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    response = console.client("deployer").post(
        "/api/deployments/", content=body, headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 413, ["at most"])


def test_a_taken_name_is_a_conflict(console, nothing_changes):
    response = console.client("deployer").post(
        "/api/deployments/", json={"name": RUNNING, "model": MODEL}
    )
    _assert_error(response, 409, ["already exists"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("PATCH", f"/api/deployments/{RUNNING}/", {"version": 99}, 400, ["no version 99"]),
        (
            "PATCH",
            f"/api/deployments/{RUNNING}/",
            {"replicas": "two"},
            400,
            ["whole number of replicas"],
        ),
        ("PATCH", f"/api/deployments/{RUNNING}/", {"replicas": 99}, 400, ["Use 0 to 50 replicas."]),
        (
            "PATCH",
            "/api/deployments/no-such-deployment/",
            {"replicas": 1},
            404,
            ["no deployment named 'no-such-deployment'"],
        ),
        ("POST", "/api/deployments/no-such-deployment/deploy/", None, 404, ["no deployment named"]),
        (
            "POST",
            "/api/deployments/no-such-deployment/undeploy/",
            None,
            404,
            ["no deployment named"],
        ),
        ("POST", f"/api/deployments/{RUNNING}/rollback/", None, 409, ["no previous version"]),
        ("POST", f"/api/deployments/{RUNNING}/deploy/", None, 202, []),  # redeploy is fine...
        ("GET", "/api/deployments/..%2F..%2Fetc/", None, 404, ["not found"]),
        ("GET", "/api/models/no-such-model/", None, 404, ["No model named 'no-such-model'"]),
        ("GET", f"/api/models/{MODEL}/versions/99/", None, 404, ["has no version '99'"]),
        ("GET", f"/api/models/{MODEL}/versions/abc/", None, 404, ["has no version 'abc'"]),
        (
            "POST",
            "/api/models/",
            {"name": "Bad_Model", "job": "classification", "input_size": 4},
            400,
            ['e.g. "bad-model"'],
        ),
        (
            "POST",
            "/api/models/",
            {"name": "bad-job", "job": "clustering", "input_size": 4},
            400,
            ["Choose classification or regression."],
        ),
        (
            "POST",
            "/api/models/",
            {"name": "bad-size", "job": "regression", "input_size": 0},
            400,
            ["Use 1 to 10000 features"],
        ),
        (
            "POST",
            "/api/models/",
            {"name": MODEL, "job": "regression", "input_size": 3},
            400,
            ["already exists"],
        ),
    ],
    ids=[
        "patch unknown version",
        "patch replicas not a number",
        "patch too many replicas",
        "patch unknown deployment",
        "deploy unknown deployment",
        "undeploy unknown deployment",
        "rollback without a previous version",
        "redeploy of a running deployment",
        "encoded traversal in the URL",
        "unknown model",
        "unknown version",
        "version not a number in the URL",
        "model name with upper case",
        "model job unknown",
        "model input_size zero",
        "model name taken",
    ],
)
def test_lifecycle_and_registry_refusals(console, running, method, path, body, status, words):
    client = console.client("deployer")
    response = client.request(method, path, json=body)
    _assert_error(response, status, words)
    if status == 202:  # ...and leaves it running again
        assert wait_for_status(client, RUNNING, {"running", "failed"})["status"] == "running"
    assert client.get("/api/models/bad-job/").status_code == 404
    assert client.get("/api/models/bad-size/").status_code == 404
    assert client.get(f"/api/models/{MODEL}/").json()["job"] == "classification"


# What the console forwards to a running deployment: refused by serving with 422 (or 400/413
# by the console before forwarding), and the deployment keeps serving.
PREDICT_CASES = [
    ("wrong feature count", [[1.0, 2.0]], 422, ["feature"]),
    ("ragged rows", [[1, 2, 3, 4], [1, 2, 3]], 422, ["row"]),
    ("strings", [["a", "b", "c", "d"]], 422, ["row"]),
    ("empty matrix", [], 422, ["empty"]),
    ("null in a row", [[1, None, 3, 4]], 422, ["row"]),
    ("a bare string", "hello", 422, []),
    ("instances not a list", {"instances": 5}, 422, []),
]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [case[1:] for case in PREDICT_CASES],
    ids=[case[0] for case in PREDICT_CASES],
)
def test_predict_refuses(console, running, body, status, words):
    client = console.client("viewer")
    response = client.post(f"/api/deployments/{RUNNING}/predict/", json=body)
    _assert_error(response, status, words)
    ok = client.post(f"/api/deployments/{RUNNING}/predict/", json=[[5.1, 3.5, 1.4, 0.2]])
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "content",
    ["[[NaN, 1, 2, 3]]", "[[Infinity, 1, 2, 3]]", "[[1e400, 1, 2, 3]]", "[[1, 2, 3, 4]"],
    ids=["NaN", "infinity", "overflowing number", "truncated"],
)
def test_predict_refuses_non_json_numbers(console, running, content):
    client = console.client("viewer")
    response = client.post(
        f"/api/deployments/{RUNNING}/predict/",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    _assert_error(response, 400, ["JSON parse error"])


def test_predict_on_a_deployment_that_is_not_serving(console, iris_model):
    client = console.client("deployer")
    assert (
        client.post("/api/deployments/", json={"name": "bad-stopped", "model": MODEL}).status_code
        == 202
    )
    wait_for_status(client, "bad-stopped", {"running", "failed"})
    client.post("/api/deployments/bad-stopped/undeploy/")
    wait_for_status(client, "bad-stopped", {"stopped"})
    response = client.post("/api/deployments/bad-stopped/predict/", json=[[1, 2, 3, 4]])
    _assert_error(response, 409, ["not serving"])
