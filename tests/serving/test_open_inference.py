"""Open Inference Protocol (V2) REST endpoints, with raw HTTP and with tritonclient."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton


def _infer(server, body: dict, path: str = "/v2/models/iris/infer") -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body)


def _tensor(rows: np.ndarray, datatype: str = "FP64", **extra) -> dict:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": datatype,
                "data": rows.reshape(-1).tolist(),
            }
        ],
        **extra,
    }


def test_server_and_model_metadata(iris_server) -> None:
    assert httpx.get(f"{iris_server.url}/v2").json()["name"] == "serving"
    meta = httpx.get(f"{iris_server.url}/v2/models/iris").json()
    assert meta["name"] == "iris"
    assert meta["versions"] == ["3"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["outputs"][0] == {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}
    assert httpx.get(f"{iris_server.url}/v2/models/iris/ready").status_code == 200
    assert httpx.get(f"{iris_server.url}/v2/models/iris/versions/3/ready").status_code == 200


def test_unknown_model_or_version_is_404(iris_server) -> None:
    assert httpx.get(f"{iris_server.url}/v2/models/other").status_code == 404
    assert httpx.get(f"{iris_server.url}/v2/models/iris/versions/9/ready").status_code == 404
    response = _infer(iris_server, _tensor(np.ones((1, 4))), "/v2/models/other/infer")
    assert response.status_code == 404


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "INT64"])
def test_infer_json_tensors_match_predict_proba(iris_server, iris, datatype) -> None:
    model, X = iris
    rows = X[::10] if datatype == "FP64" else X[::10].astype(np.float32)
    if datatype == "INT64":
        rows = np.rint(X[::10]).astype(np.int64)
    response = _infer(iris_server, _tensor(rows, datatype, id="req-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "iris"
    # No `outputs` in the request: every output, the primary one first.
    assert [o["name"] for o in body["outputs"]] == ["predict_proba", "predict"]
    output = body["outputs"][0]
    assert output["datatype"] == "FP64"
    assert output["shape"] == [len(rows), 3]
    expected = model.predict_proba(rows.astype(np.float64))
    np.testing.assert_allclose(np.reshape(output["data"], (-1, 3)), expected, rtol=0, atol=1e-9)


def test_infer_can_ask_for_the_predict_output(iris_server, iris) -> None:
    model, X = iris
    body = _tensor(X[:5], outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    outputs = _infer(iris_server, body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["predict", "predict_proba"]
    assert outputs[0]["data"] == model.predict(X[:5]).tolist()
    assert outputs[0]["datatype"] == "INT64"


def test_regression_infer_returns_predict(diabetes_server, diabetes) -> None:
    model, X = diabetes
    response = _infer(diabetes_server, _tensor(X[:4]), "/v2/models/diabetes/infer")
    (output,) = response.json()["outputs"]
    assert output["name"] == "predict"
    assert output["shape"] == [4]
    np.testing.assert_allclose(output["data"], model.predict(X[:4]), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"shape": [2, 4], "data": [1.0] * 7}, "shape needs 8 values, data has 7"),
        ({"shape": [1, 3], "data": [1.0] * 3}, "expected 4 features per row, shape says 3"),
        ({"shape": [0, 4], "data": []}, "the input is empty"),
        ({"shape": [1, 4], "data": [1, 2, "x", 4]}, "row 0, feature 2: expected a number"),
        ({"shape": [1, 4], "datatype": "BYTES", "data": [1, 2, 3, 4]}, "datatype must be"),
        ({"shape": [1, 4], "datatype": "UINT8", "data": [1, 2, -3, 4]}, "outside UINT8's range"),
        ({"shape": [1, 4], "datatype": "INT8", "data": [1, 2, 300, 4]}, "outside INT8's range"),
        ({"shape": [1, 4], "datatype": "BOOL", "data": [1, 0, 1, 0]}, "must be true or false"),
        ({"shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3.5, 4]}, "must be integers"),
        ({"shape": [1, 4], "datatype": "INT64", "data": [[1, 2, 3.5, 4]]}, "must be integers"),
        ({"shape": [1, 4], "data": [1, 2, True, 4]}, "row 0, feature 2: expected a number"),
        ({"shape": "1x4", "data": [1, 2, 3, 4]}, "shape must be [rows, 4]"),
    ],
)
def test_bad_infer_requests_get_400(iris_server, tensor, message) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP64", **tensor}]}
    response = _infer(iris_server, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_infinity_is_refused(iris_server) -> None:
    body = b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,1e999]}]}'
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body)
    assert response.status_code == 400


def test_unknown_output_is_400(iris_server) -> None:
    body = _tensor(np.ones((1, 4)), outputs=[{"name": "decision_function"}])
    response = _infer(iris_server, body)
    assert response.status_code == 400
    assert "offers predict_proba, predict" in response.json()["error"]


def test_infer_over_row_limit_is_413(iris_server) -> None:
    response = _infer(iris_server, _tensor(np.ones((1001, 4))))
    assert response.status_code == 413


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_works_unchanged(iris_server, iris, binary) -> None:
    model, X = iris
    client = triton.InferenceServerClient(url=iris_server.url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.get_model_metadata("iris")["inputs"][0]["shape"] == [-1, 4]
        tensor = triton.InferInput("input-0", [12, 4], "FP64")
        tensor.set_data_from_numpy(X[:12], binary_data=binary)
        result = client.infer("iris", [tensor], request_id="t-1")
        assert result.get_response()["id"] == "t-1"
        proba = result.as_numpy("predict_proba")
        np.testing.assert_allclose(proba, model.predict_proba(X[:12]), rtol=0, atol=1e-9)
        wanted = [triton.InferRequestedOutput("predict", binary_data=False)]
        labels = client.infer("iris", [tensor], outputs=wanted).as_numpy("predict")
        assert labels.tolist() == model.predict(X[:12]).tolist()
    finally:
        client.close()


def test_infer_answers_are_the_same_with_and_without_a_request_id(iris_server, iris) -> None:
    """Answers with an id take the general renderer, those without the pre-rendered one."""
    model, X = iris
    for rows, outputs in ((X[:5], None), (X[:1], [{"name": "predict"}])):
        extra = {"outputs": outputs} if outputs else {}
        plain = _infer(iris_server, _tensor(rows, **extra)).json()
        with_id = _infer(iris_server, _tensor(rows, id="r-1", **extra)).json()
        assert with_id.pop("id") == "r-1"
        assert plain == with_id
        assert plain["model_version"] == "3"
    output = _infer(iris_server, _tensor(X[:5])).json()["outputs"][0]
    assert output["shape"] == [5, 3] and output["datatype"] == "FP64"
    np.testing.assert_allclose(output["data"], model.predict_proba(X[:5]).ravel(), atol=1e-12)
