"""The Open Inference Protocol REST points a standard client relies on, with tritonclient."""

from __future__ import annotations

import gzip
import zlib

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from serving.config import ModelSource, ServingConfig
from tests.support.serving import write_config


@pytest.fixture()
def client(iris_server):
    client = triton.InferenceServerClient(url=iris_server.url.removeprefix("http://"))
    yield client
    client.close()


def _input(rows: np.ndarray, datatype: str = "FP64", binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("input-0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def test_outputs_left_out_returns_every_output(client, iris) -> None:
    model, X = iris
    result = client.infer("iris", [_input(X[:6])])
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:6]))
    assert result.as_numpy("predict").tolist() == model.predict(X[:6]).tolist()


@pytest.mark.parametrize("binary", [True, False])
def test_binary_outputs_are_sent_as_binary_data(client, iris, binary) -> None:
    model, X = iris
    wanted = [
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
        triton.InferRequestedOutput("predict", binary_data=binary),
    ]
    result = client.infer("iris", [_input(X[:9])], outputs=wanted)
    outputs = {o["name"]: o for o in result.get_response()["outputs"]}
    assert ("data" not in outputs["predict_proba"]) is binary
    assert outputs["predict_proba"].get("parameters", {}).get("binary_data_size") == (
        9 * 3 * 8 if binary else None
    )
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), model.predict_proba(X[:9]), rtol=0, atol=1e-9
    )
    assert result.as_numpy("predict").tolist() == model.predict(X[:9]).tolist()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_are_decoded(client, iris, algorithm) -> None:
    model, X = iris
    result = client.infer(
        "iris", [_input(X[:20])], request_compression_algorithm=algorithm, request_id="c-1"
    )
    assert result.get_response()["id"] == "c-1"
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:20]))


@pytest.mark.parametrize(
    ("datatype", "rows"),
    [
        ("FP16", np.array([[5.0, 3.5, 1.25, 0.25]], dtype=np.float16)),
        ("UINT8", np.array([[5, 3, 1, 0]], dtype=np.uint8)),
        ("INT32", np.array([[5, 3, 1, 0]], dtype=np.int32)),
        ("BOOL", np.array([[True, False, True, True]])),
    ],
)
@pytest.mark.parametrize("binary", [True, False])
def test_other_datatypes_convert_losslessly(client, iris, datatype, rows, binary) -> None:
    model, _ = iris
    result = client.infer("iris", [_input(rows, datatype, binary)])
    expected = model.predict_proba(rows.astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=0, atol=1e-9)


def test_int64_beyond_float64_precision_is_refused(client) -> None:
    rows = np.array([[2**60, 1, 1, 1]], dtype=np.int64)
    with pytest.raises(triton.InferenceServerException, match="exactly"):
        client.infer("iris", [_input(rows, "INT64")])


def test_decompression_bomb_is_413(iris_server) -> None:
    bomb = gzip.compress(b" " * 5_000_000)  # the server's limit is 1,000,000 bytes
    assert len(bomb) < 100_000
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer",
        content=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "decompressed body" in response.json()["error"]


def test_bad_or_unknown_encodings_are_refused(iris_server) -> None:
    url = f"{iris_server.url}/v2/models/iris/infer"
    garbage = httpx.post(url, content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert garbage.status_code == 400
    brotli = httpx.post(url, content=b"{}", headers={"Content-Encoding": "br"})
    assert brotli.status_code == 415
    assert "gzip" in brotli.json()["error"]
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]}'
    packed = raw_deflate.compress(body) + raw_deflate.flush()
    ok = httpx.post(url, content=packed, headers={"Content-Encoding": "deflate"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("request_id", [42, 1.5, True, {"trace": [1, 2]}, "", None])
def test_request_id_is_echoed_whatever_its_type(iris_server, request_id) -> None:
    body = {
        "id": request_id,
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}],
    }
    answer = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body).json()
    assert answer.get("id") == request_id


def test_unknown_routes_and_wrong_methods_answer_an_error(iris_server) -> None:
    missing = httpx.get(f"{iris_server.url}/v2/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = httpx.get(f"{iris_server.url}/v2/models/iris/infer")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Method Not Allowed"}
    assert "POST" in wrong.headers["allow"]


def test_server_metadata_answers_with_and_without_slash(iris_server) -> None:
    for path in ("/v2", "/v2/"):
        response = httpx.get(f"{iris_server.url}{path}", follow_redirects=False)
        assert response.status_code == 200
        assert response.json()["extensions"] == ["binary_tensor_data"]


@pytest.fixture(scope="module")
def deployed_server(start_serving, workdir, iris_config):
    """The iris model served as deployment `iris-prod`."""
    cfg = ServingConfig.model_validate(
        {
            "modelType": "joblib",
            "job": "classification",
            "model": ModelSource(method="LOCAL", path=str(workdir / "iris.joblib")),
            "inputSize": 4,
            "name": "iris",
            "version": "3",
            "deploymentName": "iris-prod",
        }
    )
    return start_serving(write_config(workdir, "iris-prod", cfg))


def test_deployment_name_is_the_url_name_and_model_name_an_alias(deployed_server, iris) -> None:
    model, X = iris
    url = deployed_server.url
    assert httpx.get(f"{url}/v2/models/iris-prod").json()["name"] == "iris-prod"
    assert httpx.get(f"{url}/v1/models").json() == {"models": ["iris-prod"]}
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        for name in ("iris-prod", "iris"):
            assert client.is_model_ready(name)
            result = client.infer(name, [_input(X[:3])])
            assert result.get_response()["model_name"] == "iris-prod"
            np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:3]))
        assert not client.is_model_ready("other")
    finally:
        client.close()
