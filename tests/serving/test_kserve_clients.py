"""KServe V1 REST, and the `kserve` SDK's REST client (V1 by default, and V2) against it."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def _run(coroutine):
    return asyncio.run(coroutine)


async def _v1_session(url: str, rows: list[list[float]]) -> tuple[bool, bool, dict]:
    client = InferenceRESTClient()  # the default configuration: protocol V1
    try:
        live = await client.is_server_live(url)
        ready = await client.is_model_ready(url, "iris")
        answer = await client.infer(url, {"instances": rows}, model_name="iris")
        return live, ready, answer
    finally:
        await client.close()


def test_kserve_sdk_default_v1_client_works(iris_server, iris) -> None:
    model, X = iris
    live, ready, answer = _run(_v1_session(iris_server.url, X[:5].tolist()))
    assert live is True
    assert ready is True
    assert answer["classes"] == model.classes_.tolist()
    np.testing.assert_allclose(answer["predictions"], model.predict_proba(X[:5]), atol=1e-9)


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


async def _v2_session(url: str, rows: np.ndarray) -> tuple[bool, bool, bool, np.ndarray, str]:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        live = await client.is_server_live(url)
        server_ready = await client.is_server_ready(url)
        model_ready = await client.is_model_ready(url, "iris")
        tensor = InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=False)
        request = InferRequest("iris", [tensor], request_id="k-1")
        response = await client.infer(url, request, model_name="iris")
        proba = response.get_output_by_name("predict_proba").as_numpy()
        return live, server_ready, model_ready, proba, response.id
    finally:
        await client.close()


def test_kserve_sdk_v2_client_works(iris_server, iris) -> None:
    model, X = iris
    live, server_ready, model_ready, proba, request_id = _run(_v2_session(iris_server.url, X[:7]))
    assert (live, server_ready, model_ready) == (True, True, True)
    assert request_id == "k-1"
    np.testing.assert_allclose(proba.reshape(7, 3), model.predict_proba(X[:7]), atol=1e-9)
