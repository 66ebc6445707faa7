"""Readiness after warm-up, and a graceful drain of in-flight requests on SIGTERM."""

from __future__ import annotations

import pickle
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from serving.config import ModelSource, ServingConfig, dump_config

sys.path.insert(0, str(Path(__file__).parent))
from serving_test_models import BrokenClassifier, SlowClassifier  # noqa: E402

HERE = str(Path(__file__).parent)


def write_config(directory: Path, name: str, estimator: object) -> Path:
    artifact = directory / f"{name}.pkl"
    artifact.write_bytes(pickle.dumps(estimator))
    cfg = ServingConfig(
        model_type="pkl",
        job="classification",
        # These test classes are not on serving's allowlist: the config approves them.
        model=ModelSource(
            method="LOCAL",
            path=str(artifact),
            trusted_types=[f"serving_test_models.{type(estimator).__name__}"],
        ),
        input_size=4,
        name=name,
    )
    path = directory / f"{name}.yaml"
    path.write_text(dump_config(cfg))
    return path


def test_sigterm_drains_in_flight_requests(start_serving, tmp_path: Path, iris) -> None:
    slow = SlowClassifier(iris[0], delay=1.5).fit(None, None)
    server = start_serving(write_config(tmp_path, "slow", slow), env={"PYTHONPATH": HERE})
    results: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{server.url}/predict", json=[[99, 1, 1, 1]], timeout=30)
        )
    )
    thread.start()
    time.sleep(0.5)  # the request is now inside the model call
    server.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert results and results[0].status_code == 200, results
    assert len(results[0].json()["predictions"][0]) == 3
    assert server.proc.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/live", timeout=2)


def test_failed_warm_up_never_becomes_ready(start_serving, tmp_path: Path, iris) -> None:
    broken = BrokenClassifier(iris[0]).fit(None, None)
    server = start_serving(
        write_config(tmp_path, "broken", broken), env={"PYTHONPATH": HERE}, wait=False
    )
    assert server.proc.wait(60) == 2
    lines = server.log().strip().splitlines()
    assert lines == [
        "serving: warm-up prediction failed: "
        "predict_proba failed: RuntimeError: weights are corrupt"
    ]
