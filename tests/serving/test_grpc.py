"""Open Inference Protocol over gRPC, with tritonclient.grpc against a live serving process."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from serving.config import ModelSource, ServingConfig
from tests.serving.test_kserve_clients import kserve_session
from tests.support.estimators import GatedWarmUpClassifier
from tests.support.net import free_port
from tests.support.serving import ROOT, ServingProcess, write_config

GENERATED = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2_grpc.py")


@pytest.fixture(scope="module")
def grpc_server(iris_config: Path):
    """The iris model with gRPC on a port of its own (--grpc-port)."""
    server = GrpcServingProcess(iris_config, free_port())
    yield server.wait_ready()
    server.stop()


class GrpcServingProcess(ServingProcess):
    def __init__(self, config: Path, grpc_port: int, extra_env: dict | None = None) -> None:
        self.grpc_port = grpc_port
        super().__init__(config, env={"SERVING_GRPC_PORT": str(grpc_port), **(extra_env or {})})

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@pytest.fixture()
def client(grpc_server):
    client = triton.InferenceServerClient(url=grpc_server.grpc_url)
    yield client
    client.close()


def test_health_and_metadata(client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "3")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "serving"
    assert server["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("iris", as_json=True)
    assert meta["name"] == "iris"
    assert meta["versions"] == ["3"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": ["-1", "4"]}]
    assert meta["outputs"][0] == {"name": "predict_proba", "datatype": "FP64", "shape": ["-1", "3"]}


def _input(rows: np.ndarray, datatype: str) -> triton.InferInput:
    tensor = triton.InferInput("input-0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows)
    return tensor


@pytest.mark.parametrize(
    ("datatype", "dtype"), [("FP64", np.float64), ("FP32", np.float32), ("INT64", np.int64)]
)
def test_infer_equals_scikit_learn(client, iris, datatype, dtype) -> None:
    model, X = iris
    rows = (np.rint(X[::7]) if datatype == "INT64" else X[::7]).astype(dtype)
    result = client.infer("iris", [_input(rows, datatype)], request_id="g-1")
    response = result.get_response(as_json=True)
    assert response["id"] == "g-1"
    assert response["model_name"] == "iris"
    assert response["model_version"] == "3"
    expected = model.predict_proba(rows.astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=0, atol=1e-9)
    assert result.as_numpy("predict").tolist() == model.predict(rows.astype(np.float64)).tolist()


def test_infer_can_ask_for_one_output(client, iris) -> None:
    model, X = iris
    wanted = [triton.InferRequestedOutput("predict")]
    result = client.infer("iris", [_input(X[:4], "FP64")], outputs=wanted)
    assert [o["name"] for o in result.get_response(as_json=True)["outputs"]] == ["predict"]
    assert result.as_numpy("predict").tolist() == model.predict(X[:4]).tolist()


def test_kserve_sdk_grpc_client_works(grpc_server, iris) -> None:
    model, X = iris
    seen = kserve_session(grpc_server.grpc_url, "grpc", X[:6])
    assert (seen["live"], seen["server_ready"], seen["model_ready"]) == (True, True, True)
    assert seen["id"] == "k-2"
    proba = np.reshape(seen["predict_proba"], (6, 3))
    np.testing.assert_allclose(proba, model.predict_proba(X[:6]), rtol=0, atol=1e-9)


def _code(call) -> str:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status()


def test_error_codes(client) -> None:
    good = _input(np.ones((1, 4)), "FP64")
    assert _code(lambda: client.infer("other", [good])) == "StatusCode.NOT_FOUND"
    assert _code(lambda: client.get_model_metadata("other")) == "StatusCode.NOT_FOUND"
    assert _code(lambda: client.infer("iris", [good], model_version="9")) == "StatusCode.NOT_FOUND"
    narrow = _input(np.ones((1, 3)), "FP64")
    assert _code(lambda: client.infer("iris", [narrow])) == "StatusCode.INVALID_ARGUMENT"
    nan = _input(np.array([[1.0, np.nan, 1.0, 1.0]]), "FP64")
    assert _code(lambda: client.infer("iris", [nan])) == "StatusCode.INVALID_ARGUMENT"
    text = triton.InferInput("input-0", [1, 4], "BYTES")
    text.set_data_from_numpy(np.array([[b"a", b"b", b"c", b"d"]], dtype=object))
    assert _code(lambda: client.infer("iris", [text])) == "StatusCode.INVALID_ARGUMENT"
    many = _input(np.ones((1001, 4)), "FP64")  # the config's maxBatchRows is 1000
    assert _code(lambda: client.infer("iris", [many])) == "StatusCode.RESOURCE_EXHAUSTED"
    unknown = [triton.InferRequestedOutput("decision_function")]
    code = _code(lambda: client.infer("iris", [good], outputs=unknown))
    assert code == "StatusCode.INVALID_ARGUMENT"


def test_grpc_requests_are_in_the_metrics(grpc_server, client) -> None:
    client.infer("iris", [_input(np.ones((2, 4)), "FP64")])
    text = httpx.get(f"{grpc_server.url}/metrics").text
    route = 'route="/inference.GRPCInferenceService/ModelInfer"'
    assert f'serving_requests_total{{method="GRPC",{route},status="200"}}' in text


def test_unavailable_until_ready(iris, tmp_path) -> None:
    """While the model warms up, ServerReady says false and ModelInfer answers UNAVAILABLE."""
    gate = tmp_path / "warm-up-may-end"
    slow = GatedWarmUpClassifier(iris[0], gate=str(gate)).fit(None, None)
    artifact = tmp_path / "slow.pkl"
    artifact.write_bytes(pickle.dumps(slow))
    cfg = ServingConfig(
        model_type="pkl",
        job="classification",
        # A test-only class, not on serving's allowlist: the config approves it.
        model=ModelSource(
            method="LOCAL",
            path=str(artifact),
            trusted_types=["tests.support.estimators.GatedWarmUpClassifier"],
        ),
        input_size=4,
        name="slow",
    )
    config = write_config(tmp_path, "slow", cfg)
    server = GrpcServingProcess(config, free_port())
    client = triton.InferenceServerClient(url=server.grpc_url)
    try:
        deadline = time.monotonic() + 60
        while not _answers(client):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        # gRPC listens from the start of the warm-up through the model thread, which waits
        # for the gate.
        assert client.is_server_ready() is False
        assert client.is_model_ready("slow") is False
        good = _input(np.ones((1, 4)), "FP64")
        assert _code(lambda: client.infer("slow", [good])) == "StatusCode.UNAVAILABLE"
        gate.touch()
        server.wait_ready(60)
        assert client.is_server_ready() is True
        assert client.infer("slow", [good]).as_numpy("predict_proba").shape == (1, 3)
    finally:
        client.close()
        server.stop()


def _answers(client: triton.InferenceServerClient) -> bool:
    try:
        return client.is_server_live(client_timeout=1)
    except InferenceServerException:
        return False


def test_grpc_can_be_turned_off(iris_config) -> None:
    port = free_port()
    server = GrpcServingProcess(iris_config, 0).wait_ready()
    try:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        with pytest.raises(InferenceServerException):
            client.is_server_live(client_timeout=2)
        assert "gRPC" not in server.log()
    finally:
        server.stop()


def test_a_taken_port_from_the_config_leaves_rest_serving(workdir, iris_config, tmp_path) -> None:
    """The config's port (8081 unless set) may be taken by another local serving process."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = ServingConfig(
            model_type="joblib",
            job="classification",
            model=ModelSource(method="LOCAL", path=str(workdir / "iris.joblib")),
            input_size=4,
            name="iris",
            grpc_port=port,
        )
        config = write_config(tmp_path, "taken", cfg)
        server = ServingProcess(config, env={"SERVING_GRPC_PORT": ""}).wait_ready()
        try:
            assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
            assert f"serving without gRPC: cannot listen for gRPC on 127.0.0.1:{port}" in (
                server.log()
            )
        finally:
            server.stop()
        # Asked for on the command line (here $SERVING_GRPC_PORT), the port must be served.
        required = GrpcServingProcess(config, port)
        assert required.proc.wait(60) != 0
        assert "cannot listen for gRPC" in required.log()
        required.stop()


def test_generated_code_is_current(tmp_path) -> None:
    """`make grpc-code` output is what is committed (same grpcio-tools as requirements)."""
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--python_out={tmp_path}"]
        + [f"--grpc_python_out={tmp_path}", "serving/oip_grpc/open_inference_grpc.proto"],
        cwd=ROOT,
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "serving" / "oip_grpc" / name).read_text()
        assert fresh == (ROOT / "serving" / "oip_grpc" / name).read_text(), name
