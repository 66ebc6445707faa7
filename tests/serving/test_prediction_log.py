"""The prediction log: a serving process writing every request to a folder, the GCS sink (the
real client against gcp-storage-emulator), and a full queue that drops and counts, never
blocks."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from google.cloud import storage

from serving.app import create_app
from serving.config import ConfigError, ServingConfig, parse_config
from serving.predlog import FolderSink, GcsSink, PredictionLog
from tests.support.serving import ServingProcess, serve_estimator


def _records(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("*/*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line]
    return lines


def _wait(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not written in time")
        time.sleep(0.05)


def test_a_sample_needs_a_sink_and_the_sink_a_known_scheme() -> None:
    base = {"modelType": "joblib", "job": "regression", "inputSize": 2}
    base["model"] = {"method": "LOCAL", "path": "/m.joblib"}
    with pytest.raises(ConfigError, match="needs logging.sink"):
        parse_config({**base, "logging": {"sample": 0.5}})
    with pytest.raises(ConfigError, match="logging.sink"):
        parse_config({**base, "logging": {"sample": 1, "sink": "s3://bucket"}})
    with pytest.raises(ConfigError, match="logging.sample"):
        parse_config({**base, "logging": {"sample": 2, "sink": "file:///tmp/x"}})
    cfg = parse_config({**base, "logging": {"sample": 1, "sink": "gs://logs/iris"}})
    assert cfg.logging is not None and cfg.logging.sink == "gs://logs/iris"


def test_a_folder_sink_holds_every_request_with_its_inputs_and_outputs(
    start_serving: Callable[..., ServingProcess], workdir: Path, iris
) -> None:
    folder = workdir / "predlog-folder"
    logging = {"sample": 1.0, "sink": f"file://{folder}", "flush_seconds": 0.2}
    config = serve_estimator(
        workdir, "logged-iris", iris[0], model_type="joblib", job="classification",
        input_size=4, version="7", logging=logging,
    )  # fmt: skip
    server = start_serving(config)
    rows = iris[1][:3].tolist()
    sent = []
    for i, row in enumerate(rows):
        answer = httpx.post(
            f"{server.url}/predict", json=[row], headers={"x-request-id": f"req-{i}"}
        )
        assert answer.status_code == 200
        sent.append((row, answer.json()["predictions"]))
    infer = {"id": "oip-1", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                         "data": rows[0]}]}  # fmt: skip
    assert httpx.post(f"{server.url}/v2/models/logged-iris/infer", json=infer).status_code == 200
    _wait(lambda: len(_records(folder)) >= 4)
    records = {r["request_id"]: r for r in _records(folder)}
    for i, (row, predictions) in enumerate(sent):
        record = records[f"req-{i}"]
        assert record["inputs"] == [row]
        assert record["outputs"] == predictions
        assert record["version"] == "7"
        assert record["latency_ms"] > 0
    assert records["oip-1"]["inputs"] == [rows[0]]
    assert {"predict", "predict_proba"} <= set(records["oip-1"]["outputs"])  # no outputs: all
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "serving_prediction_log_written_total 4.0" in metrics
    assert "serving_prediction_log_dropped_total 0.0" in metrics


def test_a_gcs_sink_writes_blobs_through_the_official_client(
    gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    client = storage.Client(project="test")
    if not client.bucket("predlogs").exists():
        client.create_bucket("predlogs")
    log = PredictionLog(GcsSink("predlogs", "iris/v1", "test"), sample=1.0, version="3")
    log.record(time.perf_counter(), "g-1", [[5.1, 3.5, 1.4, 0.2]], np.array([[0.9, 0.1]]))
    assert log.flush_once() == 1
    found = list(client.list_blobs("predlogs", prefix="iris/v1/"))
    assert len(found) == 1 and found[0].name.endswith(".jsonl")
    record = json.loads(found[0].download_as_bytes())
    assert record["request_id"] == "g-1" and record["version"] == "3"
    assert record["inputs"] == [[5.1, 3.5, 1.4, 0.2]] and record["outputs"] == [[0.9, 0.1]]


class BlockedSink(FolderSink):
    """A folder sink that waits until released: a stalled disk or network."""

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        self.release = threading.Event()

    def write(self, name: str, data: bytes) -> None:
        self.release.wait(30)
        super().write(name, data)


def test_a_full_queue_drops_and_counts_and_answers_go_on(iris, tmp_path: Path) -> None:
    estimator, features = iris
    cfg = ServingConfig.model_validate(
        {
            "modelType": "joblib",
            "job": "classification",
            "model": {"method": "LOCAL", "path": "/unused"},
            "inputSize": 4,
            "logging": {
                "sample": 1.0,
                "sink": f"file://{tmp_path}",
                "maxQueue": 5,
                "batchRecords": 2,
                "flushSeconds": 0.05,
            },
        }
    )
    app = create_app(cfg, estimator)
    sink = BlockedSink(str(tmp_path))
    app.state.serving.predictions.sink = sink
    with TestClient(app) as client:
        row = features[0].tolist()
        # Every request is answered while the writer is stuck on its first batch.
        for _ in range(50):
            assert client.post("/predict", json=[row]).status_code == 200
        metrics = client.get("/metrics").text
        dropped = float(re.search(r"^serving_prediction_log_dropped_total (\S+)", metrics, re.M)[1])
        assert dropped >= 50 - 5 - 2  # at most the queue and the batch in the writer's hands
        sink.release.set()
        _wait(lambda: len(_records(tmp_path)) == 50 - dropped)
