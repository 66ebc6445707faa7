"""KServe V1 REST, and the `kserve` SDK's REST client (V1 by default, and V2) against it."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests.support.serving import ROOT


def kserve_session(url: str, protocol: str, rows: np.ndarray) -> dict:
    """What the kserve SDK's REST client saw (in its own process: see kserve_session.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.serving.kserve_session", url, protocol]
        + [json.dumps(rows.tolist())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_kserve_sdk_default_v1_client_works(iris_server, iris) -> None:
    model, X = iris
    seen = kserve_session(iris_server.url, "v1", X[:5])
    assert seen["live"] is True
    assert seen["model_ready"] is True
    assert seen["answer"]["classes"] == model.classes_.tolist()
    np.testing.assert_allclose(
        seen["answer"]["predictions"], model.predict_proba(X[:5]), rtol=0, atol=1e-9
    )


def test_kserve_sdk_v2_client_works(iris_server, iris) -> None:
    model, X = iris
    seen = kserve_session(iris_server.url, "v2", X[:7])
    assert (seen["live"], seen["server_ready"], seen["model_ready"]) == (True, True, True)
    assert seen["id"] == "k-1"
    proba = np.reshape(seen["predict_proba"], (7, 3))
    np.testing.assert_allclose(proba, model.predict_proba(X[:7]), rtol=0, atol=1e-9)


def test_v1_predict_answers_as_predict_does(iris_server, iris) -> None:
    _, X = iris
    body = {"instances": X[:3].tolist()}
    v1 = httpx.post(f"{iris_server.url}/v1/models/iris:predict", json=body)
    plain = httpx.post(f"{iris_server.url}/predict", json=body)
    assert v1.status_code == 200
    assert v1.json() == plain.json()


def test_v1_model_list_and_readiness(iris_server) -> None:
    assert httpx.get(f"{iris_server.url}/v1/models").json() == {"models": ["iris"]}
    assert httpx.get(f"{iris_server.url}/v1/models/iris").json() == {"name": "iris", "ready": True}
    missing = httpx.get(f"{iris_server.url}/v1/models/other")
    assert missing.status_code == 404
    assert "not served here" in missing.json()["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"instances": [[1, 2, 3]]}, 400),
        ({"instances": []}, 400),
        ({"rows": [[1, 2, 3, 4]]}, 400),
    ],
)
def test_v1_bad_input_is_400_with_an_error(iris_server, body, status) -> None:
    response = httpx.post(f"{iris_server.url}/v1/models/iris:predict", json=body)
    assert response.status_code == status
    assert response.json()["error"]


def test_v1_predict_of_an_unknown_model_is_404(iris_server) -> None:
    response = httpx.post(f"{iris_server.url}/v1/models/other:predict", json={"instances": []})
    assert response.status_code == 404
