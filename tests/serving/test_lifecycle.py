"""Readiness after warm-up, and a graceful drain of in-flight requests on SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.estimators import BrokenClassifier, SlowClassifier
from tests.support.net import wait_until
from tests.support.serving import ServingProcess, serve_estimator


def write_config(directory: Path, name: str, estimator: object) -> Path:
    return serve_estimator(
        directory,
        name,
        estimator,
        model_type="pkl",
        job="classification",
        input_size=4,
        # These test classes are not on serving's allowlist: the config approves them.
        trusted_types=[f"tests.support.estimators.{type(estimator).__name__}"],
    )


def test_sigterm_drains_in_flight_requests(start_serving, tmp_path: Path, iris) -> None:
    started = tmp_path / "call-started"
    slow = SlowClassifier(iris[0], delay=3.0, started=str(started)).fit(None, None)
    server = start_serving(write_config(tmp_path, "slow", slow))
    results: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{server.url}/predict", json=[[99, 1, 1, 1]], timeout=30)
        )
    )
    thread.start()
    wait_until(started.exists, 30, "the request to reach the model call")
    server.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert results and results[0].status_code == 200, results
    assert len(results[0].json()["predictions"][0]) == 3
    assert server.proc.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v2/health/live", timeout=2)


def test_failed_warm_up_never_becomes_ready(start_serving, tmp_path: Path, iris) -> None:
    broken = BrokenClassifier(iris[0]).fit(None, None)
    server = start_serving(write_config(tmp_path, "broken", broken), wait=False)
    assert server.proc.wait(60) == 2
    lines = server.log().strip().splitlines()
    assert lines == [
        "serving: warm-up prediction failed: "
        "predict_proba failed: RuntimeError: weights are corrupt"
    ]


def test_a_draining_replica_closes_kept_alive_connections_without_failing_a_request(
    tmp_path: Path, iris
) -> None:
    """Two replicas on one socket, as the local runtime runs them: a client sending request
    after request on one kept-alive connection while its replica drains sees no failure; the
    replica's answers in the drain say `Connection: close` and the client moves on."""
    config = serve_estimator(
        tmp_path, "iris", iris[0], model_type="joblib", job="classification", input_size=4
    )
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    row = [[5.1, 3.5, 1.4, 0.2]]
    draining = ServingProcess(config, listener=listener).wait_ready()
    other: ServingProcess | None = None
    failures: list[str] = []
    closing = 0
    try:
        with httpx.Client(timeout=10) as client:
            url = f"{draining.url}/predict"
            assert client.post(url, json=row).status_code == 200  # kept alive, to `draining`
            other = ServingProcess(config, listener=listener).wait_ready()
            draining.proc.send_signal(signal.SIGTERM)
            after_exit = 0
            while after_exit < 20:  # through the drain, and on after it (to `other`)
                after_exit += draining.proc.poll() is not None
                try:
                    response = client.post(url, json=row)
                except httpx.TransportError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:80]}")
                closing += response.headers.get("connection") == "close"
        assert not failures, failures[:5]
        assert draining.proc.returncode == 0
        assert closing == 1, "the draining replica's answer should say Connection: close, once"
    finally:
        for replica in (draining, other):
            if replica is not None:
                replica.stop()
        listener.close()
