"""Open Inference Protocol over gRPC (`GRPCInferenceService`), so tritonclient.grpc and
KServe's gRPC clients work.

The server runs on uvicorn's event loop (grpc.aio) and shares the REST routes' model,
MicroBatcher, validation and metrics: a gRPC request and a REST request that arrive together
join the same model call. Tensors come as typed `contents` or `raw_input_contents`; outputs
always go back as `raw_output_contents`, which is what tritonclient and Triton use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from serving import v2
from serving.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
    ServingError,
)
from serving.inputs import check_finite
from serving.oip_grpc import open_inference_grpc_pb2 as pb
from serving.oip_grpc import open_inference_grpc_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from serving.state import State

SERVICE = "/inference.GRPCInferenceService/"
# A domain error's gRPC status; metrics record the HTTP status the same error gets over REST,
# so one error rate covers both protocols.
_CODES: dict[type[ServingError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ModelNotFound: grpc.StatusCode.NOT_FOUND,
    ModelNotReady: grpc.StatusCode.UNAVAILABLE,
}
# Which typed `contents` field holds each datatype (FP16 has none: it comes as raw bytes).
_CONTENTS = {
    "FP64": "fp64_contents",
    "FP32": "fp32_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "INT16": "int_contents",
    "INT8": "int_contents",
    "UINT64": "uint64_contents",
    "UINT32": "uint_contents",
    "UINT16": "uint_contents",
    "UINT8": "uint_contents",
    "BOOL": "bool_contents",
}


def _status(exc: ServingError) -> tuple[grpc.StatusCode, int]:
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code, 400 if kind is InvalidInput else exc.status_code
    return grpc.StatusCode.INTERNAL, exc.status_code


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The six calls of the protocol, over the app's shared State."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.model = state.model
        self.cfg = state.cfg
        metadata = v2.model_metadata(self.model)
        self._metadata = pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["outputs"]],
        )
        self._server = pb.ServerMetadataResponse(
            name="serving", version="1", extensions=v2.EXTENSIONS
        )

    async def _answer(self, method: str, context: Any, call: Callable[[], Any]) -> Any:
        """Return call(), turning domain errors into gRPC statuses and recording metrics."""
        started = time.perf_counter()
        status = 200
        try:
            return call()
        except ServingError as exc:
            code, status = _status(exc)
            await context.abort(code, str(exc))
        except Exception:
            status = 500
            raise
        finally:
            self.state.metrics.observe_request(
                SERVICE + method, "GRPC", status, time.perf_counter() - started
            )

    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self.state.ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._server

    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        def ready() -> Any:
            self.state.check_model(request.name, request.version or None)
            return pb.ModelReadyResponse(ready=self.state.ready)

        return await self._answer("ModelReady", context, ready)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        def metadata() -> Any:
            self.state.check_model(request.name, request.version or None)
            return self._metadata

        return await self._answer("ModelMetadata", context, metadata)

    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        # _answer's work written out: this is the hot call.
        started = time.perf_counter()
        try:
            response = await self._infer(request)
        except ServingError as exc:
            code, status = _status(exc)
            self._observe_infer(status, time.perf_counter() - started)
            await context.abort(code, str(exc))
        except Exception:
            self._observe_infer(500, time.perf_counter() - started)
            raise
        self._observe_infer(200, time.perf_counter() - started)
        return response

    def _observe_infer(self, status: int, seconds: float) -> None:
        self.state.metrics.observe_request(SERVICE + "ModelInfer", "GRPC", status, seconds)

    async def _infer(self, request: Any) -> Any:
        state = self.state
        state.check_model(request.model_name, request.model_version or None)
        state.check_ready()
        matrix = self._matrix(request)
        outputs = self._outputs(request)
        batcher = state.batcher
        if len(outputs) == 1:
            results = [await batcher.predict(outputs[0], matrix)]
        else:  # queued together, so they share the batcher's next model calls
            results = await asyncio.gather(*(batcher.predict(o, matrix) for o in outputs))
        response = pb.ModelInferResponse(
            model_name=self.model.name, model_version=self.cfg.version or "", id=request.id
        )
        for name, values in zip(outputs, results, strict=True):
            datatype, raw = v2.output_bytes(values)
            response.outputs.add(name=name, datatype=datatype, shape=values.shape)
            response.raw_output_contents.append(raw)
        logged = dict(zip(outputs, results, strict=True))
        state.predictions.record(None, request.id or None, matrix, logged)
        return response

    def _matrix(self, request: Any) -> Any:
        if self.model.table is not None and len(request.inputs) > 1:
            return self._column_tensors(request)
        if len(request.inputs) != 1:
            raise InvalidInput(f"expected exactly one input tensor, got {len(request.inputs)}")
        tensor = request.inputs[0]
        label = f"input {tensor.name!r}" if tensor.name else "inputs[0]"
        datatype = tensor.datatype
        rows, cols = v2.check_tensor(
            label, datatype, list(tensor.shape), self.model.n_features, self.cfg.max_batch_rows
        )
        raw = request.raw_input_contents
        if raw:
            if len(raw) != 1:
                raise InvalidInput(f"expected one raw_input_contents entry, got {len(raw)}")
            return v2.binary_matrix(label, datatype, raw[0], rows, cols)
        field = _CONTENTS.get(datatype)
        if field is None:
            raise InvalidInput(f"{label}: {datatype} data must come as raw_input_contents")
        data = getattr(tensor.contents, field)
        if len(data) != rows * cols:
            raise InvalidInput(f"{label}: shape needs {rows * cols} values, data has {len(data)}")
        if datatype in ("INT64", "UINT64"):
            v2.check_exact(label, np.array(data, dtype=v2.INPUT_DATATYPES[datatype]), cols)
        values = np.fromiter(data, np.float64, len(data))  # faster than np.array on these
        if datatype[0] in "IU":
            v2.check_integers(label, datatype, values, cols)
        matrix = values.reshape(rows, cols)
        if datatype[0] == "F":
            check_finite(matrix)
        return matrix

    def _column_tensors(self, request: Any) -> Any:
        """One tensor per column (a tabular model), through the REST adapter's parsing: raw
        contents become binary data, typed contents JSON values (BYTES decoded as UTF-8)."""
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidInput(
                f"expected one raw_input_contents entry per input, got {len(raw)} for "
                f"{len(request.inputs)} inputs"
            )
        tensors = []
        for k, tensor in enumerate(request.inputs):
            doc: dict[str, Any] = {
                "name": tensor.name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
            }
            if raw:
                doc["parameters"] = {"binary_data_size": len(raw[k])}
            elif tensor.datatype == "BYTES":
                doc["data"] = [_text(b) for b in tensor.contents.bytes_contents]
            else:
                field = _CONTENTS.get(tensor.datatype)
                doc["data"] = list(getattr(tensor.contents, field)) if field else None
            tensors.append(doc)
        return v2.column_tensors(tensors, b"".join(raw), self.model, self.cfg.max_batch_rows)

    def _outputs(self, request: Any) -> list[str]:
        if not request.outputs:
            return list(self.model.outputs)
        names = []
        for spec in request.outputs:
            if spec.name not in self.model.outputs:
                raise InvalidInput(
                    f"unknown output {spec.name!r}: this model offers "
                    + ", ".join(self.model.outputs)
                )
            names.append(spec.name)
        return names


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise InvalidInput("BYTES data is not UTF-8 text") from None


async def start(state: State, address: str) -> grpc.aio.Server:
    """Start the gRPC service on `address` ("host:port") on the running event loop."""
    limit = state.cfg.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(state), server)
    try:
        server.add_insecure_port(address)
    except RuntimeError:  # grpc's way of saying the bind failed
        raise OSError(f"cannot listen for gRPC on {address} (is the port in use?)") from None
    await server.start()
    return server
