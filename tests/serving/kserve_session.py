"""Drive a serving process with the `kserve` SDK's REST client; print what it saw as JSON.

Run as `python -m tests.serving.kserve_session URL v1|v2|grpc ROWS_JSON` (grpc: URL is
host:port). It runs in a process of
its own because the kserve SDK and tritonclient.grpc each register the protocol's protobuf
messages under the same names, so one process cannot import both.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import (
    InferenceGRPCClient,
    InferenceRESTClient,
    InferInput,
    InferRequest,
    RESTConfig,
)


async def v1(url: str, rows: list[list[float]]) -> dict:
    client = InferenceRESTClient()  # the default configuration: protocol V1
    try:
        return {
            "live": await client.is_server_live(url),
            "model_ready": await client.is_model_ready(url, "iris"),
            "answer": await client.infer(url, {"instances": rows}, model_name="iris"),
        }
    finally:
        await client.close()


async def v2(url: str, rows: list[list[float]]) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    matrix = np.array(rows, dtype=np.float64)
    try:
        tensor = InferInput("input-0", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=False)
        request = InferRequest("iris", [tensor], request_id="k-1")
        response = await client.infer(url, request, model_name="iris")
        proba = response.get_output_by_name("predict_proba").as_numpy()
        return {
            "live": await client.is_server_live(url),
            "server_ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, "iris"),
            "id": response.id,
            "predict_proba": proba.tolist(),
        }
    finally:
        await client.close()


async def grpc(address: str, rows: list[list[float]]) -> dict:
    client = InferenceGRPCClient(address)
    matrix = np.array(rows, dtype=np.float64)
    try:
        tensor = InferInput("input-0", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=False)
        response = await client.infer(InferRequest("iris", [tensor], request_id="k-2"))
        proba = response.get_output_by_name("predict_proba").as_numpy()
        return {
            "live": await client.is_server_live(),
            "server_ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready("iris"),
            "id": response.id,
            "predict_proba": proba.tolist(),
        }
    finally:
        await client.close()


if __name__ == "__main__":
    url, protocol, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(asyncio.run({"v1": v1, "v2": v2, "grpc": grpc}[protocol](url, rows))))
